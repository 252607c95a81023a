"""PageDataset: opening checks, page access, deterministic batches."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from data_helpers import expected_stream

from gauntlet.data import DatasetError, PageDataset, prepare_dataset

PAGE = 64


@pytest.fixture
def dataset_dir(corpus, tmp_path):
    out = tmp_path / "ds"
    prepare_dataset([corpus], out, page_tokens=PAGE, validation_fraction=0.2)
    return out


@pytest.fixture
def ds(dataset_dir):
    return PageDataset(dataset_dir)


def test_page_is_the_int64_tokens_of_that_page(ds):
    stream = np.frombuffer(expected_stream(), dtype=np.uint8)
    page = ds.page(2)
    assert page.dtype == np.int64
    np.testing.assert_array_equal(page, stream[2 * PAGE : 3 * PAGE])


@pytest.mark.parametrize("bad", [-1, "num_pages"])
def test_page_out_of_range_raises(ds, bad):
    with pytest.raises(IndexError):
        ds.page(ds.num_pages if bad == "num_pages" else bad)


def test_missing_manifest_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="no manifest.json"):
        PageDataset(tmp_path)


def test_truncated_token_file_is_detected(dataset_dir):
    path = dataset_dir / "shard-00000.bin"
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(DatasetError, match="bytes"):
        PageDataset(dataset_dir)


def test_verify_detects_changed_tokens(dataset_dir):
    path = dataset_dir / "shard-00000.bin"
    data = bytearray(path.read_bytes())
    data[5] ^= 1
    path.write_bytes(bytes(data))
    PageDataset(dataset_dir)  # same size: only the hash can tell
    with pytest.raises(DatasetError, match="sha256"):
        PageDataset(dataset_dir, verify=True)


def test_edited_manifest_no_longer_matches_its_id(dataset_dir):
    path = dataset_dir / "manifest.json"
    fields = json.loads(path.read_text())
    fields["num_validation_pages"] += 1
    path.write_text(json.dumps(fields))
    with pytest.raises(DatasetError, match="dataset_id"):
        PageDataset(dataset_dir)


def test_batches_are_full_windows_of_seq_len_plus_one(ds):
    batches = list(ds.batches([0, 1, 2, 3], seq_len=15, batch_size=3, seed=0))
    assert len(batches) == (4 * PAGE // 16) // 3
    for batch in batches:
        assert batch.shape == (3, 16)
        assert batch.dtype == torch.int64


def test_batches_are_distinct_windows_cut_from_the_given_pages(ds):
    pages = [3, 0]
    tokens = np.concatenate([ds.page(i) for i in pages])
    windows = tokens.reshape(-1, 16).tolist()  # 8 windows, 4 batches of 2: nothing dropped
    rows = [r for b in ds.batches(pages, seq_len=15, batch_size=2, seed=1) for r in b.tolist()]
    assert sorted(rows) == sorted(windows)
    assert rows != windows  # shuffled


def test_batches_are_deterministic_for_a_seed(ds):
    def run(seed):
        return torch.cat(list(ds.batches([0, 1, 2], seq_len=7, batch_size=4, seed=seed)))

    assert torch.equal(run(5), run(5))
    assert not torch.equal(run(5), run(6))


def test_batches_check_page_ids_before_iterating(ds):
    with pytest.raises(IndexError):
        ds.batches([0, ds.num_pages], seq_len=7, batch_size=2, seed=0)


def test_validation_pages_are_the_last_pages(ds):
    assert ds.validation_page_ids()[-1] == ds.num_pages - 1
    assert len(ds.validation_page_ids()) == ds.num_pages - ds.num_train_pages > 0


@pytest.mark.parametrize("seq_len", [20, 15, 100])  # windows straddle pages, fit them, span 2
def test_page_order_batches_train_a_growing_prefix_of_the_pages_in_full(ds, seq_len):
    ds.page = lambda i: np.arange(i * PAGE, (i + 1) * PAGE) + 1000  # every token unique
    pages = [3, 0, 5, 1, 4]
    window = seq_len + 1
    tokens = np.concatenate([ds.page(i) for i in pages])
    cut = tokens[: len(tokens) // window * window].reshape(-1, window)
    index = {tuple(row): i for i, row in enumerate(cut.tolist())}  # window -> its place

    ordered = ds.batches_in_page_order(pages, seq_len=seq_len, batch_size=2, seed=7)
    plain = list(ds.batches(pages, seq_len=seq_len, batch_size=2, seed=7))
    rows = [tuple(r) for b in ordered.batches for r in b.tolist()]
    assert len(set(rows)) == len(rows) and set(rows) <= set(index)  # whole distinct windows
    assert len(ordered.batches) == len(plain)  # as many steps as the shuffled pass
    assert len(ordered.pages_done) == len(ordered.batches)
    assert ordered.pages_done[-1] == len(pages)  # a whole pass declares every page

    trained: set[int] = set()
    for batch, done in zip(ordered.batches[:-1], ordered.pages_done[:-1], strict=True):
        trained |= {index[tuple(r)] for r in batch.tolist()}
        # Exactly the pages every token of which is trained: no more, and none held back.
        tokens_in = {t for w in trained for t in range(w * window, (w + 1) * window)}
        full = 0
        while full < len(pages) and all(
            t in tokens_in for t in range(full * PAGE, (full + 1) * PAGE)
        ):
            full += 1
        assert done == full, (done, full)
    assert ordered.pages_done == sorted(ordered.pages_done)


def test_page_order_batches_are_shuffled_within_a_page_and_deterministic(ds):
    def rows(seed):
        return [
            r
            for b in ds.batches_in_page_order([0, 1, 2], seq_len=7, batch_size=2, seed=seed).batches
            for r in b.tolist()
        ]

    assert rows(5) == rows(5)
    assert rows(5) != rows(6)
    first_page = ds.page(0).reshape(-1, 8).tolist()
    assert sorted(rows(5)[:8]) == sorted(first_page)  # page 0's 8 windows come first...
    assert rows(5)[:8] != first_page  # ...in shuffled order
