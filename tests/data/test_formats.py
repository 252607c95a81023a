"""Input formats: JSONL and Parquet documents tokenise exactly like the same
text in .txt files; the text field is configurable."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gauntlet.data import DatasetError, PageDataset, prepare_dataset
from gauntlet.data.sources import documents

DOCS = ["first document \u00e9\n" * 20, "second \u2603 doc " * 30, "third\u2028line " * 25]
PAGE = 32


def tokens_of(out: Path) -> bytes:
    ds = PageDataset(out, verify=True)
    return b"".join(bytes(ds.page(i).astype("uint8")) for i in range(ds.num_pages))


def prepare(source: Path, out: Path, **kwargs) -> bytes:
    prepare_dataset([source], out, page_tokens=PAGE, validation_fraction=0.1, **kwargs)
    return tokens_of(out)


@pytest.fixture
def from_text(tmp_path: Path) -> bytes:
    root = tmp_path / "txt"
    root.mkdir()
    for i, doc in enumerate(DOCS):
        (root / f"{i}.txt").write_text(doc, encoding="utf-8")
    return prepare(root, tmp_path / "ds-txt")


def write_parquet(path: Path, column: str, values: list[str | None], row_group_size: int) -> Path:
    pq.write_table(
        pa.table({column: values, "id": range(len(values))}), path, row_group_size=row_group_size
    )
    return path


def test_jsonl_documents_tokenise_like_text_files(tmp_path, from_text):
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(json.dumps({"text": d}, ensure_ascii=False) for d in DOCS))
    assert prepare(path, tmp_path / "ds") == from_text


def test_parquet_documents_tokenise_like_text_files(tmp_path, from_text):
    # Row groups of one row: documents come from several batches, in order.
    path = write_parquet(tmp_path / "docs.parquet", "text", [DOCS[0], None, *DOCS[1:]], 1)
    assert prepare(path, tmp_path / "ds") == from_text


def test_parquet_files_in_a_directory_are_found(tmp_path, from_text):
    (tmp_path / "dir").mkdir()
    write_parquet(tmp_path / "dir" / "a.parquet", "text", DOCS, 2)
    assert prepare(tmp_path / "dir", tmp_path / "ds") == from_text


def test_the_text_field_is_configurable(tmp_path, from_text):
    jsonl = tmp_path / "j" / "docs.jsonl"
    jsonl.parent.mkdir()
    jsonl.write_text("\n".join(json.dumps({"content": d, "text": "wrong"}) for d in DOCS))
    assert prepare(jsonl, tmp_path / "ds-j", text_field="content") == from_text
    parquet = write_parquet(tmp_path / "docs.parquet", "content", DOCS, 2)
    assert prepare(parquet, tmp_path / "ds-p", text_field="content") == from_text


def test_parquet_without_the_text_column_is_an_error(tmp_path):
    path = write_parquet(tmp_path / "docs.parquet", "body", DOCS, 2)
    with pytest.raises(DatasetError, match="no column 'text'; its columns: body"):
        list(documents(path))


def test_parquet_with_a_non_text_column_is_an_error(tmp_path):
    path = tmp_path / "docs.parquet"
    pq.write_table(pa.table({"text": [1, 2, 3]}), path)
    with pytest.raises(DatasetError, match="not text"):
        list(documents(path))


def test_jsonl_with_a_broken_line_names_it(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text('{"text": "ok"}\n{not json\n')
    with pytest.raises(DatasetError, match="docs.jsonl:2"):
        list(documents(path))


def test_data_prepare_names_the_columns_of_a_parquet_file_without_the_text_column(tmp_path):
    path = write_parquet(tmp_path / "docs.parquet", "body", DOCS, 2)
    argv = [sys.executable, "-m", "gauntlet.cli", "data", "prepare", "--source", str(path)]
    argv += ["--data.dataset_dir", str(tmp_path / "ds")]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "has no column 'text'; its columns: body" in out.stderr
    assert "Traceback" not in out.stderr
