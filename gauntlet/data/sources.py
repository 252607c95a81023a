"""Input side of preparation: which files a list of sources names, and the
documents (strings) each file holds.

* ``.py``, ``.txt``, ``.md``: the whole file is one document.
* ``.jsonl``: one JSON object per line; its ``text_field`` string is a
  document (lines without it, or with a non-string, are skipped).
* ``.parquet``: the ``text_field`` column, one document per non-null row,
  read in batches of rows so that memory stays bounded by a batch, not a file.

Bytes that are not UTF-8 become U+FFFD: every dataset is valid UTF-8.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from gauntlet.data.manifest import DatasetError

TEXT_SUFFIXES = {".py", ".txt", ".md"}
JSONL_SUFFIX = ".jsonl"
PARQUET_SUFFIX = ".parquet"
SOURCE_SUFFIXES = TEXT_SUFFIXES | {JSONL_SUFFIX, PARQUET_SUFFIX}
# Never descended into, in any directory source: caches, installed third-party
# packages (not part of the corpus, and different on every machine), dot-dirs.
SKIPPED_DIRS = {"__pycache__", "site-packages", "dist-packages"}
PARQUET_BATCH_ROWS = 1024


def source_files(sources: list[Path]) -> Iterator[Path]:
    """Files in the caller's order of ``sources``; a directory expands to its
    files with a known suffix (recursively), in sorted path order, so the same
    tree gives the same stream on every machine."""
    for source in sources:
        source = Path(source)
        if source.is_file():
            yield source
            continue
        if not source.is_dir():
            raise DatasetError(f"source {source} does not exist")
        found: list[Path] = []
        for root, dirs, files in os.walk(source):
            dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS and not d.startswith(".")]
            found.extend(Path(root, n) for n in files if Path(n).suffix in SOURCE_SUFFIXES)
        yield from sorted(found)


def documents(path: Path, *, text_field: str = "text") -> Iterator[str]:
    """The documents of one file, in file order (see the module docstring)."""
    if path.suffix == JSONL_SUFFIX:
        yield from _jsonl_documents(path, text_field)
    elif path.suffix == PARQUET_SUFFIX:
        yield from _parquet_documents(path, text_field)
    else:
        yield path.read_bytes().decode("utf-8", errors="replace")


def _jsonl_documents(path: Path, text_field: str) -> Iterator[str]:
    # Streamed line by line; only "\n" ends a record (a JSON string may hold
    # U+2028 and friends, which str.splitlines would split on).
    with open(path, encoding="utf-8", errors="replace", newline="\n") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DatasetError(f"{path}:{lineno}: not JSON: {e}") from e
            if isinstance(record, dict) and isinstance(record.get(text_field), str):
                yield record[text_field]


def _parquet_documents(path: Path, text_field: str) -> Iterator[str]:
    import pyarrow as pa  # optional dependency: import on use
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as e:
        raise DatasetError(f"{path}: not a Parquet file: {e}") from e
    with parquet:
        if text_field not in parquet.schema_arrow.names:
            columns = ", ".join(parquet.schema_arrow.names)
            raise DatasetError(
                f"{path} has no column {text_field!r}; its columns: {columns} "
                "(name the text one with --text-field)"
            )
        column_type = parquet.schema_arrow.field(text_field).type
        if not (pa.types.is_string(column_type) or pa.types.is_large_string(column_type)):
            raise DatasetError(f"{path}: column {text_field!r} is {column_type}, not text")
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=[text_field]):
            for text in batch.column(0).to_pylist():
                if text is not None:
                    yield text
