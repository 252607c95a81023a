"""Sharded datasets: global page ids across shard files, per-shard hashes,
and datasets written before sharding (format 1) still open unchanged."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from data_helpers import expected_stream

from gauntlet.data import DatasetError, PageDataset, prepare_dataset

PAGE = 16
PAGES_PER_SHARD = 3


@pytest.fixture
def sharded(corpus, tmp_path) -> Path:
    out = tmp_path / "ds"
    prepare_dataset(
        [corpus],
        out,
        page_tokens=PAGE,
        validation_fraction=0.1,
        shard_bytes=PAGES_PER_SHARD * PAGE + 5,
    )
    return out


def test_shards_hold_whole_pages_up_to_shard_bytes(sharded):
    manifest = PageDataset(sharded).manifest
    assert manifest.shards is not None
    num_pages = len(expected_stream()) // PAGE
    assert [s.num_pages for s in manifest.shards] == [
        min(PAGES_PER_SHARD, num_pages - i) for i in range(0, num_pages, PAGES_PER_SHARD)
    ]
    names = sorted(p.name for p in sharded.iterdir())
    assert names == ["manifest.json", *(s.name for s in manifest.shards)]
    for shard in manifest.shards:
        assert (sharded / shard.name).stat().st_size == shard.num_pages * PAGE


def test_page_ids_run_across_shard_boundaries(sharded):
    ds = PageDataset(sharded)
    stream = np.frombuffer(expected_stream(), dtype=np.uint8)
    for i in range(ds.num_pages):  # every page, each side of every boundary
        np.testing.assert_array_equal(ds.page(i), stream[i * PAGE : (i + 1) * PAGE])
    window = np.concatenate(
        [b.flatten() for b in ds.batches([2, 3], seq_len=2 * PAGE - 1, batch_size=1, seed=0)]
    )
    np.testing.assert_array_equal(window, stream[2 * PAGE : 4 * PAGE])  # pages 2|3 straddle shards


def test_validation_pages_are_the_last_pages_of_the_last_shard(sharded):
    ds = PageDataset(sharded)
    assert ds.validation_page_ids() == list(range(ds.num_train_pages, ds.num_pages))
    assert ds.num_pages == sum(s.num_pages for s in ds.manifest.shards or ())


def test_verify_names_the_corrupted_shard(sharded):
    path = sharded / "shard-00001.bin"
    data = bytearray(path.read_bytes())
    data[3] ^= 1
    path.write_bytes(bytes(data))
    PageDataset(sharded)  # same size: only the hash can tell
    with pytest.raises(DatasetError, match=r"shard-00001\.bin does not match"):
        PageDataset(sharded, verify=True)


def test_a_missing_shard_is_named(sharded):
    (sharded / "shard-00002.bin").unlink()
    with pytest.raises(DatasetError, match=r"shard-00002\.bin has -1 bytes"):
        PageDataset(sharded)


def test_dataset_id_pins_every_shard(sharded):
    manifest = json.loads((sharded / "manifest.json").read_text())
    manifest["shards"][1]["sha256"] = "0" * 64
    (sharded / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DatasetError, match="dataset_id"):
        PageDataset(sharded)


def test_a_shard_smaller_than_a_page_is_refused(corpus, tmp_path):
    with pytest.raises(ValueError, match="less than one page"):
        prepare_dataset([corpus], tmp_path / "ds", page_tokens=PAGE, shard_bytes=PAGE - 1)


def test_preparing_again_removes_stale_shards(sharded, corpus):
    prepare_dataset([corpus], sharded, page_tokens=PAGE, validation_fraction=0.1)
    assert sorted(p.name for p in sharded.iterdir()) == ["manifest.json", "shard-00000.bin"]
    PageDataset(sharded, verify=True)


def write_format_1(out: Path, tokens: bytes, page_tokens: int) -> str:
    """A dataset as written before sharding: tokens.bin, and its id as computed then."""
    out.mkdir()
    num_pages = len(tokens) // page_tokens
    tokens = tokens[: num_pages * page_tokens]
    (out / "tokens.bin").write_bytes(tokens)
    fields = {
        "format_version": 1,
        "tokenizer": "byte",
        "vocab_size": 256,
        "dtype": "uint8",
        "page_tokens": page_tokens,
        "num_pages": num_pages,
        "num_validation_pages": 1,
        "num_tokens": num_pages * page_tokens,
        "sha256": hashlib.sha256(tokens).hexdigest(),
    }
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    dataset_id = hashlib.sha256(canonical).hexdigest()[:16]
    (out / "manifest.json").write_text(json.dumps({**fields, "dataset_id": dataset_id}, indent=2))
    return dataset_id


def test_a_format_1_dataset_opens_with_its_original_id(tmp_path):
    stream = expected_stream()
    dataset_id = write_format_1(tmp_path / "old", stream, PAGE)
    ds = PageDataset(tmp_path / "old", verify=True)
    assert ds.dataset_id == dataset_id
    assert ds.manifest.format_version == 1
    np.testing.assert_array_equal(ds.page(3), np.frombuffer(stream[3 * PAGE : 4 * PAGE], np.uint8))
    (tmp_path / "old" / "tokens.bin").write_bytes(b"x" * (ds.num_pages * PAGE))
    with pytest.raises(DatasetError, match=r"tokens\.bin does not match"):
        PageDataset(tmp_path / "old", verify=True)
