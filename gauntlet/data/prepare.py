"""Write side: turn text, JSONL and Parquet files into a tokenised, paged,
sharded, memory-mappable dataset directory.

Layout of a dataset directory (manifest format 2)::

    shard-00000.bin  whole pages of tokens, little-endian, back to back
    shard-00001.bin  ... (each at most ``shard_bytes``; the last may be shorter)
    manifest.json    DatasetManifest (sizes, dtype, tokenizer, shards, dataset_id)

Documents (see :mod:`gauntlet.data.sources`) are tokenised one by one and
each is followed by the tokenizer's end-of-document id (0 for bytes); NUL
characters inside a document are dropped so that, for bytes, 0 only ever
means "end of document". The token stream is cut at ``max_tokens``
(mid-document if need be) and then truncated to a whole number of pages. The
last ``round(num_pages * validation_fraction)`` pages (at least one when the
fraction is positive) are the validation pages.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import secrets
import shutil
import sysconfig
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np

from gauntlet.data.manifest import (
    MANIFEST_NAME,
    SHARD_PATTERN,
    TOKENS_NAME,
    DatasetError,
    DatasetManifest,
    ShardInfo,
    TokenDtype,
)
from gauntlet.data.pages import PageDataset, token_dtype
from gauntlet.data.progress import PrepareProgress
from gauntlet.data.shards import ShardWriter
from gauntlet.data.sources import documents, source_files
from gauntlet.data.tokenizer import ByteTokenizer, Tokenizer, dtype_for_vocab, load_tokenizer

log = logging.getLogger(__name__)

DEFAULT_SHARD_BYTES = 64 * 1024 * 1024
# Documents per tokenizer call: lets a Hugging Face tokenizer use its threads
# on JSONL/Parquet rows, small enough that max_tokens wastes little work.
ENCODE_BATCH_DOCS = 256
# Left out of the default corpus: CPython's own test suite (huge, full of
# deliberately odd encodings) and anything installed into the interpreter.
DEFAULT_EXCLUDED = {"test", "site-packages", "dist-packages", "idlelib", "__pycache__"}


def default_sources() -> list[Path]:
    """The Python standard library on this machine, minus ``test``,
    ``site-packages`` and ``idlelib``: a few tens of MB of real code and prose
    that needs no download. (Its contents, hence the dataset_id, depend on the
    Python version; nodes compare dataset ids, not Python versions.)"""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    return sorted(p for p in stdlib.iterdir() if p.name not in DEFAULT_EXCLUDED)


@dataclass(frozen=True)
class CapReached:
    """The corpus held more than ``max_tokens``: preparation stopped inside file ``file_index``."""

    max_tokens: int
    file_index: int  # 1-based, the file being read when the cap was reached
    files: int
    bytes_before: int  # input bytes of the files finished before that one
    total_bytes: int

    def message(self) -> str:
        share = self.bytes_before / self.total_bytes if self.total_bytes else 0.0
        return (
            f"stopped at the --data.max_tokens cap of {self.max_tokens:,} tokens in file "
            f"{self.file_index} of {self.files} ({share:.0%} of {self.total_bytes:,} input bytes "
            "read before it); the rest of the corpus is left out: pass --data.max_tokens 0 for "
            "no cap, or a larger number"
        )


def _batched(items: Iterable[str], n: int) -> Iterator[list[str]]:
    it = iter(items)
    while batch := list(islice(it, n)):
        yield batch


def _tokenize(
    sources: list[Path],
    writer: ShardWriter,
    tokenizer: Tokenizer,
    *,
    text_field: str,
    max_tokens: int | None,
    progress: bool,
) -> CapReached | None:
    """Stream every document's tokens + end-of-document id into ``writer``; say where the
    ``max_tokens`` cap cut the corpus, if it did."""
    files = list(source_files(sources))
    eot = np.array([tokenizer.eot_id], dtype=np.int64)
    total = sum(f.stat().st_size for f in files)
    read = 0
    with PrepareProgress(progress, total) as bar:
        for done, file in enumerate(files, 1):
            for batch in _batched(documents(file, text_field=text_field), ENCODE_BATCH_DOCS):
                for tokens in tokenizer.encode_batch([t.replace("\x00", "") for t in batch]):
                    if len(tokens) == 0:
                        continue
                    # Out-of-range ids would wrap silently when cast to the dtype.
                    if int(tokens.max()) >= tokenizer.vocab_size or int(tokens.min()) < 0:
                        raise DatasetError(f"{file}: token id outside the vocabulary")
                    chunk = np.concatenate([tokens.astype(np.int64, copy=False), eot])
                    if max_tokens is not None:
                        chunk = chunk[: max_tokens - writer.written]
                    writer.write(chunk)
                    if max_tokens is not None and writer.written >= max_tokens:
                        return CapReached(max_tokens, done, len(files), read, total)
                bar.tokens(writer.written)
            bar.file_done(file.stat().st_size, done, writer.written)
            read += file.stat().st_size
    return None


def _remove_dataset_files(out_dir: Path) -> None:
    """The manifest first (so no reader sees it over changing files), then
    every token file a previous preparation may have left."""
    (out_dir / MANIFEST_NAME).unlink(missing_ok=True)
    for path in out_dir.iterdir():
        if path.name == TOKENS_NAME or re.match(SHARD_PATTERN, path.name):
            path.unlink()


def _manifest(
    tokenizer: Tokenizer,
    dtype_name: TokenDtype,
    page_tokens: int,
    num_validation_pages: int,
    shards: list[ShardInfo],
) -> DatasetManifest:
    num_pages = sum(s.num_pages for s in shards)
    draft = DatasetManifest(
        tokenizer=tokenizer.name,
        tokenizer_sha256=tokenizer.sha256,
        vocab_size=tokenizer.vocab_size,
        eot_id=tokenizer.eot_id,
        dtype=dtype_name,
        page_tokens=page_tokens,
        num_pages=num_pages,
        num_validation_pages=num_validation_pages,
        num_tokens=num_pages * page_tokens,
        shards=tuple(shards),
        dataset_id="0" * 16,  # placeholder: the id is a hash of the other fields
    )
    return draft.model_copy(update={"dataset_id": draft.expected_id()})


def prepare_dataset(
    sources: list[Path],
    out_dir: Path,
    *,
    page_tokens: int = 4096,
    validation_fraction: float = 0.05,
    max_tokens: int | None = None,
    progress: bool = False,
    tokenizer: Tokenizer | None = None,
    text_field: str = "text",
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    on_cap: Callable[[CapReached], None] | None = None,
) -> DatasetManifest:
    """Tokenise ``sources`` (files, or directories searched recursively for
    *.py, *.txt, *.md, *.jsonl and *.parquet; JSONL and Parquet documents are
    their ``text_field``) with ``tokenizer`` (bytes by default) into shards of
    at most ``shard_bytes`` in ``out_dir``, replacing any dataset there.
    Writes the shards first and manifest.json last. Raises DatasetError if
    the corpus yields no training page. When ``max_tokens`` cuts the corpus short,
    ``on_cap`` is told where (default: a warning in the log)."""
    if page_tokens < 1:
        raise ValueError("page_tokens must be positive")
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError("validation_fraction must be in [0, 1)")
    if max_tokens is not None and max_tokens < 1:
        raise ValueError("max_tokens must be positive")
    tokenizer = tokenizer if tokenizer is not None else ByteTokenizer()
    dtype_name = dtype_for_vocab(tokenizer.vocab_size)
    dtype = token_dtype(dtype_name)
    page_bytes = page_tokens * dtype.itemsize
    if shard_bytes < page_bytes:
        raise ValueError(f"shard_bytes {shard_bytes} is less than one page ({page_bytes} bytes)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_dataset_files(out_dir)

    writer = ShardWriter(
        out_dir, dtype=dtype, page_tokens=page_tokens, pages_per_shard=shard_bytes // page_bytes
    )
    with writer:
        capped = _tokenize(
            sources,
            writer,
            tokenizer,
            text_field=text_field,
            max_tokens=max_tokens,
            progress=progress,
        )
    if capped is not None:
        (on_cap or (lambda cap: log.warning("%s", cap.message())))(capped)
    shards = writer.finish()
    num_pages = sum(s.num_pages for s in shards)
    num_val = max(1, round(num_pages * validation_fraction)) if validation_fraction > 0 else 0
    if num_pages - num_val < 1:
        _remove_dataset_files(out_dir)
        raise DatasetError(
            f"{writer.written} tokens make {num_pages} pages of {page_tokens}: "
            "no page left for training"
        )
    manifest = _manifest(tokenizer, dtype_name, page_tokens, num_val, shards)
    tmp = out_dir / f"{MANIFEST_NAME}.tmp"
    tmp.write_text(manifest.to_json())
    os.replace(tmp, out_dir / MANIFEST_NAME)
    return manifest


def prepare_from_cli(
    sources: list[Path],
    out_dir: Path,
    *,
    tokenizer: Path | None = None,
    eos_token: str | None = None,
    text_field: str = "text",
    page_tokens: int = 4096,
    validation_fraction: float = 0.05,
    max_tokens: int | None = None,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    progress: bool = True,
    on_cap: Callable[[CapReached], None] | None = None,
) -> DatasetManifest:
    """``gauntlet data prepare``: :func:`prepare_dataset` with the tokenizer
    given as a ``tokenizer.json`` path (None: bytes) and, when ``sources`` is
    empty, this machine's standard library as the corpus."""
    return prepare_dataset(
        list(sources) or default_sources(),
        out_dir,
        page_tokens=page_tokens,
        validation_fraction=validation_fraction,
        max_tokens=max_tokens,
        progress=progress,
        tokenizer=load_tokenizer(tokenizer, eos_token=eos_token),
        text_field=text_field,
        shard_bytes=shard_bytes,
        on_cap=on_cap,
    )


def ensure_dataset(out_dir: Path, *, page_tokens: int, max_tokens: int | None) -> PageDataset:
    """Open the dataset in ``out_dir``, preparing it from :func:`default_sources`
    first if it has no manifest. Safe from several processes at once: each
    prepares into its own temporary sibling directory and renames it into
    place; a rename onto an existing non-empty directory fails, and the loser
    discards its copy and opens the winner's. Raises DatasetError if the
    existing dataset has another page size."""
    out_dir = Path(out_dir)
    if not (out_dir / MANIFEST_NAME).exists():
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            prepare_dataset(default_sources(), tmp, page_tokens=page_tokens, max_tokens=max_tokens)
            try:
                os.rename(tmp, out_dir)  # atomic; replaces out_dir only if it is empty
            except OSError as e:
                if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    dataset = PageDataset(out_dir)
    if dataset.page_tokens != page_tokens:
        raise DatasetError(
            f"{out_dir} has pages of {dataset.page_tokens} tokens, not the {page_tokens} asked for"
        )
    return dataset
