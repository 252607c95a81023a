"""Read side of a prepared dataset: pages out of read-only memory maps (one per
token file), and
shuffled fixed-length training windows cut from a list of pages."""

from __future__ import annotations

import bisect
import hashlib
import operator
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gauntlet.data.manifest import MANIFEST_NAME, DatasetError, parse_manifest


@dataclass(frozen=True)
class PageOrderBatches:
    """One pass over a list of pages, a page at a time: ``batches`` in training order, and
    ``pages_done[i]``: how many of the pages (a prefix of the list) every token of is in
    ``batches[: i + 1]``. A pass cut short covers ``pages_done`` of the pages in full."""

    batches: list[torch.Tensor]
    pages_done: list[int]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def check_token_file(path: Path, size: int, sha256: str, verify: bool) -> None:
    """DatasetError naming ``path`` unless it has ``size`` bytes (and, with
    ``verify``, the given sha256)."""
    actual = path.stat().st_size if path.exists() else -1
    if actual != size:
        raise DatasetError(f"{path} has {actual} bytes, manifest says {size}")
    if verify and file_sha256(path) != sha256:
        raise DatasetError(f"{path} does not match the manifest's sha256")


def token_dtype(name: str) -> np.dtype:
    # Fixed little-endian on disk, so a dataset reads the same on any machine.
    return np.dtype(name).newbyteorder("<")


class PageDataset:
    """A prepared dataset directory: ``manifest.json`` and its token files
    (format 2: ``shard-NNNNN.bin``; format 1: one ``tokens.bin``).

    Global page ids run across the files in manifest order. Pages
    ``[0, num_train_pages)`` are assignable to miners; the rest are the
    validation pages. Opening checks the manifest and every file's size; with
    ``verify=True`` it also hashes every file (seconds per GB) and names the
    first one that does not match."""

    def __init__(self, dir: Path, *, verify: bool = False) -> None:
        self.dir = Path(dir)
        try:
            data = (self.dir / MANIFEST_NAME).read_bytes()
        except FileNotFoundError:
            raise DatasetError(f"no {MANIFEST_NAME} in {self.dir}") from None
        manifest = parse_manifest(data, str(self.dir))
        dtype = token_dtype(manifest.dtype)
        self._files: list[np.memmap] = []
        self._starts: list[int] = []  # global id of each file's first page
        first = 0
        for name, pages, sha256 in manifest.files():
            path = self.dir / name
            check_token_file(path, pages * manifest.page_tokens * dtype.itemsize, sha256, verify)
            self._files.append(
                np.memmap(path, dtype=dtype, mode="r", shape=(pages, manifest.page_tokens))
            )
            self._starts.append(first)
            first += pages
        self.manifest = manifest

    @property
    def dataset_id(self) -> str:
        return self.manifest.dataset_id

    @property
    def page_tokens(self) -> int:
        return self.manifest.page_tokens

    @property
    def num_pages(self) -> int:
        """All pages, validation pages included."""
        return self.manifest.num_pages

    @property
    def num_train_pages(self) -> int:
        """Pages that may be assigned to miners: ids ``0 .. num_train_pages - 1``."""
        return self.manifest.num_train_pages

    @property
    def vocab_size(self) -> int:
        """The tokenizer's vocabulary: every token id is below it."""
        return self.manifest.vocab_size

    def validation_page_ids(self) -> list[int]:
        return list(range(self.num_train_pages, self.num_pages))

    def page(self, i: int) -> np.ndarray:
        """Tokens of page ``i`` as int64 [page_tokens] (a copy, safe to modify)."""
        i = operator.index(i)
        if not 0 <= i < self.num_pages:
            raise IndexError(f"page {i} out of range [0, {self.num_pages})")
        # The file holding page i: the last whose first page is <= i.
        f = bisect.bisect_right(self._starts, i) - 1
        return self._files[f][i - self._starts[f]].astype(np.int64)

    def batches(
        self, page_ids: list[int], *, seq_len: int, batch_size: int, seed: int
    ) -> Iterator[torch.Tensor]:
        """One pass over ``page_ids`` as int64 batches [batch_size, seq_len + 1].

        The pages are concatenated in the given order and cut into
        non-overlapping windows of seq_len + 1 tokens (inputs are a window's
        first seq_len tokens, targets its last seq_len). Windows are shuffled
        by ``seed`` (numpy PCG64), so the same arguments give the same batches
        on every machine. The leftover tokens and the last partial batch are
        dropped; a caller that wants more steps calls again (another seed to
        reshuffle). Arguments are checked here, before iteration starts."""
        windows = self._windows(page_ids, seq_len=seq_len, batch_size=batch_size, seed=seed)
        n_windows = len(windows)
        order = np.random.default_rng(seed).permutation(n_windows)

        def generate() -> Iterator[torch.Tensor]:
            for start in range(0, n_windows - batch_size + 1, batch_size):
                yield torch.from_numpy(windows[order[start : start + batch_size]])

        return generate()

    def batches_in_page_order(
        self, page_ids: list[int], *, seq_len: int, batch_size: int, seed: int
    ) -> PageOrderBatches:
        """The windows of :meth:`batches` (same cut, same drops), ordered by the page each
        window starts in and shuffled by ``seed`` within a page: a miner stopped before the
        end of its pass has trained a prefix of its pages in full and can declare it. The
        last batch completes the pass (the dropped leftovers, as in :meth:`batches`)."""
        windows = self._windows(page_ids, seq_len=seq_len, batch_size=batch_size, seed=seed)
        n_windows = len(windows)
        first_page = np.arange(n_windows) * (seq_len + 1) // self.page_tokens
        shuffle = np.random.default_rng(seed).permutation(n_windows)
        order = np.lexsort((shuffle, first_page))  # by first page, shuffled within one
        n_batches = n_windows // batch_size
        batches, done = [], []
        for b in range(n_batches):
            batches.append(torch.from_numpy(windows[order[b * batch_size : (b + 1) * batch_size]]))
            following = (b + 1) * batch_size  # index in ``order`` of the next window
            last = b == n_batches - 1
            # Every window starting before the next one's page is trained: those pages are.
            done.append(len(page_ids) if last else int(first_page[order[following]]))
        return PageOrderBatches(batches, done)

    def _windows(
        self, page_ids: list[int], *, seq_len: int, batch_size: int, seed: int
    ) -> np.ndarray:
        """The arguments checked, and ``page_ids`` concatenated in order and cut into
        [n, seq_len + 1] windows (the leftover tokens dropped)."""
        if seq_len < 1 or batch_size < 1:
            raise ValueError("seq_len and batch_size must be positive")
        if seed < 0:
            raise ValueError("seed must be non-negative")
        pages = [self.page(i) for i in page_ids]  # bounds-checks every id
        window = seq_len + 1
        tokens = np.concatenate(pages) if pages else np.empty(0, dtype=np.int64)
        n_windows = len(tokens) // window
        return tokens[: n_windows * window].reshape(n_windows, window)
