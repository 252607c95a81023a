"""Write side: turn text files into one tokenised, paged, memory-mappable file.

Layout of a dataset directory::

    tokens.bin     num_pages * page_tokens tokens, little-endian, back to back
    manifest.json  DatasetManifest (sizes, dtype, sha256, dataset_id)

Documents are tokenised one by one and each is followed by the separator
token ``ByteTokenizer.eot_id`` (0); NUL characters inside a document are
dropped so that 0 only ever means "end of document". The token stream is cut
at ``max_tokens`` (mid-document if need be) and then truncated to a whole
number of pages. The last ``round(num_pages * validation_fraction)`` pages
(at least one when the fraction is positive) are the validation pages.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from gauntlet.data.manifest import (
    FORMAT_VERSION,
    MANIFEST_NAME,
    TOKENS_NAME,
    DatasetError,
    DatasetManifest,
    dataset_id_of,
)
from gauntlet.data.pages import PageDataset, file_sha256, token_dtype
from gauntlet.data.tokenizer import ByteTokenizer

TEXT_SUFFIXES = {".py", ".txt", ".md"}
JSONL_SUFFIX = ".jsonl"
# Never descended into, in any directory source: caches, installed third-party
# packages (not part of the corpus, and different on every machine), dot-dirs.
SKIPPED_DIRS = {"__pycache__", "site-packages", "dist-packages"}
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


def _source_files(sources: list[Path]) -> Iterator[Path]:
    """Files in the caller's order of ``sources``; a directory expands to its
    matching files (recursively) in sorted path order."""
    for source in sources:
        source = Path(source)
        if source.is_file():
            yield source
            continue
        if not source.is_dir():
            raise DatasetError(f"source {source} does not exist")
        found = []
        for root, dirs, files in os.walk(source):
            dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS and not d.startswith(".")]
            for name in files:
                path = Path(root, name)
                if path.suffix in TEXT_SUFFIXES or path.suffix == JSONL_SUFFIX:
                    found.append(path)
        yield from sorted(found)


def _documents(path: Path) -> Iterator[str]:
    # Bytes that are not UTF-8 become U+FFFD: every dataset is valid UTF-8.
    text = path.read_bytes().decode("utf-8", errors="replace")
    if path.suffix != JSONL_SUFFIX:
        yield text
        return
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise DatasetError(f"{path}:{lineno}: not JSON: {e}") from e
        if isinstance(record, dict) and isinstance(record.get("text"), str):
            yield record["text"]


class _Progress:
    """One self-overwriting stderr line, at most five updates a second."""

    def __init__(self, enabled: bool) -> None:
        self.enabled, self.last = enabled, 0.0

    def update(self, files: int, tokens: int, final: bool = False) -> None:
        now = time.monotonic()
        if self.enabled and (final or now - self.last > 0.2):
            self.last = now
            end = "\n" if final else ""
            print(
                f"\rpreparing dataset: {files} files, {tokens:,} tokens",
                end=end,
                file=sys.stderr,
                flush=True,
            )


def _write_tokens(sources: list[Path], path: Path, max_tokens: int | None, progress: bool) -> int:
    """Stream every document's tokens + separator into ``path``; returns the count."""
    tokenizer = ByteTokenizer()
    dtype = token_dtype(_dtype_name(tokenizer.vocab_size))
    eot = np.array([tokenizer.eot_id], dtype=dtype)
    written, files = 0, 0
    bar = _Progress(progress)
    with open(path, "wb") as out:
        for file in _source_files(sources):
            files += 1
            for text in _documents(file):
                tokens = tokenizer.encode_array(text.replace("\x00", ""))
                if len(tokens) == 0:
                    continue
                chunk = np.concatenate([tokens.astype(dtype), eot])
                if max_tokens is not None:
                    chunk = chunk[: max_tokens - written]
                out.write(chunk.tobytes())
                written += len(chunk)
                if max_tokens is not None and written >= max_tokens:
                    bar.update(files, written, final=True)
                    return written
            bar.update(files, written)
    bar.update(files, written, final=True)
    return written


def _dtype_name(vocab_size: int) -> str:
    if vocab_size <= 1 << 8:
        return "uint8"
    return "uint16" if vocab_size <= 1 << 16 else "uint32"


def prepare_dataset(
    sources: list[Path],
    out_dir: Path,
    *,
    page_tokens: int = 4096,
    validation_fraction: float = 0.05,
    max_tokens: int | None = None,
    progress: bool = False,
) -> DatasetManifest:
    """Tokenise ``sources`` (files, or directories searched recursively for
    *.py, *.txt, *.md and *.jsonl, whose lines' "text" fields are documents)
    into ``out_dir``. Writes tokens.bin first and manifest.json last. Raises
    DatasetError if the corpus yields no training page."""
    if page_tokens < 1:
        raise ValueError("page_tokens must be positive")
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError("validation_fraction must be in [0, 1)")
    if max_tokens is not None and max_tokens < 1:
        raise ValueError("max_tokens must be positive")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokens_path = out_dir / TOKENS_NAME
    tokenizer = ByteTokenizer()
    dtype_name = _dtype_name(tokenizer.vocab_size)

    written = _write_tokens(sources, tokens_path, max_tokens, progress)
    num_pages = written // page_tokens
    num_val = max(1, round(num_pages * validation_fraction)) if validation_fraction > 0 else 0
    if num_pages - num_val < 1:
        raise DatasetError(
            f"{written} tokens make {num_pages} pages of {page_tokens}: no page left for training"
        )
    num_tokens = num_pages * page_tokens
    os.truncate(tokens_path, num_tokens * token_dtype(dtype_name).itemsize)

    fields = {
        "format_version": FORMAT_VERSION,
        "tokenizer": tokenizer.name,
        "vocab_size": tokenizer.vocab_size,
        "dtype": dtype_name,
        "page_tokens": page_tokens,
        "num_pages": num_pages,
        "num_validation_pages": num_val,
        "num_tokens": num_tokens,
        "sha256": file_sha256(tokens_path),
    }
    manifest = DatasetManifest.model_validate({**fields, "dataset_id": dataset_id_of(fields)})
    tmp = out_dir / f"{MANIFEST_NAME}.tmp"
    tmp.write_text(manifest.model_dump_json(indent=2) + "\n")
    os.replace(tmp, out_dir / MANIFEST_NAME)
    return manifest


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
