"""Read side of a prepared dataset: pages out of a read-only memory map, and
shuffled fixed-length training windows cut from a list of pages."""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from pydantic import ValidationError

from gauntlet.data.manifest import MANIFEST_NAME, TOKENS_NAME, DatasetError, DatasetManifest


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def token_dtype(name: str) -> np.dtype:
    # Fixed little-endian on disk, so a dataset reads the same on any machine.
    return np.dtype(name).newbyteorder("<")


class PageDataset:
    """A prepared dataset directory (``manifest.json`` + ``tokens.bin``).

    Pages ``[0, num_train_pages)`` are assignable to miners; the rest are the
    validation pages. Opening checks the manifest and the file size; with
    ``verify=True`` it also hashes the whole file (seconds per GB)."""

    def __init__(self, dir: Path, *, verify: bool = False) -> None:
        self.dir = Path(dir)
        try:
            manifest = DatasetManifest.model_validate_json((self.dir / MANIFEST_NAME).read_bytes())
        except FileNotFoundError:
            raise DatasetError(f"no {MANIFEST_NAME} in {self.dir}") from None
        except ValidationError as e:
            raise DatasetError(f"invalid {MANIFEST_NAME} in {self.dir}: {e}") from e
        if manifest.num_tokens != manifest.num_pages * manifest.page_tokens:
            raise DatasetError("manifest num_tokens is not num_pages * page_tokens")
        if manifest.num_train_pages < 1:
            raise DatasetError("manifest leaves no training pages")
        if manifest.dataset_id != manifest.expected_id():
            raise DatasetError("manifest dataset_id does not match its fields")
        path = self.dir / TOKENS_NAME
        dtype = token_dtype(manifest.dtype)
        size = path.stat().st_size if path.exists() else -1
        if size != manifest.num_tokens * dtype.itemsize:
            raise DatasetError(
                f"{path} has {size} bytes, manifest says {manifest.num_tokens * dtype.itemsize}"
            )
        if verify and file_sha256(path) != manifest.sha256:
            raise DatasetError(f"{path} does not match the manifest's sha256")
        self.manifest = manifest
        self._tokens = np.memmap(
            path, dtype=dtype, mode="r", shape=(manifest.num_pages, manifest.page_tokens)
        )

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

    def validation_page_ids(self) -> list[int]:
        return list(range(self.num_train_pages, self.num_pages))

    def page(self, i: int) -> np.ndarray:
        """Tokens of page ``i`` as int64 [page_tokens] (a copy, safe to modify)."""
        i = operator.index(i)
        if not 0 <= i < self.num_pages:
            raise IndexError(f"page {i} out of range [0, {self.num_pages})")
        return self._tokens[i].astype(np.int64)

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
        if seq_len < 1 or batch_size < 1:
            raise ValueError("seq_len and batch_size must be positive")
        if seed < 0:
            raise ValueError("seed must be non-negative")
        pages = [self.page(i) for i in page_ids]  # bounds-checks every id
        window = seq_len + 1
        tokens = np.concatenate(pages) if pages else np.empty(0, dtype=np.int64)
        n_windows = len(tokens) // window
        windows = tokens[: n_windows * window].reshape(n_windows, window)
        order = np.random.default_rng(seed).permutation(n_windows)

        def generate() -> Iterator[torch.Tensor]:
            for start in range(0, n_windows - batch_size + 1, batch_size):
                yield torch.from_numpy(windows[order[start : start + batch_size]])

        return generate()
