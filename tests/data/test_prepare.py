"""prepare_dataset / ensure_dataset: layout, manifest, ids, concurrency."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from data_helpers import CORPUS, expected_stream, write_corpus

from gauntlet.data import (
    ByteTokenizer,
    DatasetError,
    PageDataset,
    default_sources,
    ensure_dataset,
    prepare_dataset,
)
from gauntlet.data import prepare as prepare_module

PAGE = 64


def test_byte_tokenizer_round_trips_unicode():
    tok = ByteTokenizer()
    text = "caf\u00e9 \u2603 \U0001f600"
    assert tok.encode(text) == list(text.encode())
    assert tok.decode(tok.encode(text)) == text
    assert tok.encode_array(text).dtype == np.uint8


def test_documents_are_concatenated_in_sorted_order_with_zero_separators(corpus, tmp_path):
    prepare_dataset([corpus], tmp_path / "ds", page_tokens=PAGE)
    stream = expected_stream()
    data = (tmp_path / "ds" / "shard-00000.bin").read_bytes()
    assert data == stream[: len(stream) // PAGE * PAGE]


def test_page_counts_and_validation_split(corpus, tmp_path):
    total = len(expected_stream())
    manifest = prepare_dataset([corpus], tmp_path / "ds", page_tokens=PAGE, validation_fraction=0.1)
    assert manifest.num_pages == total // PAGE
    assert manifest.num_validation_pages == round(manifest.num_pages * 0.1)
    assert manifest.num_tokens == manifest.num_pages * PAGE
    ds = PageDataset(tmp_path / "ds")
    assert ds.num_train_pages == manifest.num_pages - manifest.num_validation_pages
    assert ds.validation_page_ids() == list(range(ds.num_train_pages, ds.num_pages))


def test_a_positive_validation_fraction_holds_out_at_least_one_page(corpus, tmp_path):
    manifest = prepare_dataset(
        [corpus], tmp_path / "ds", page_tokens=PAGE, validation_fraction=0.001
    )
    assert manifest.num_validation_pages == 1


def test_manifest_fields_describe_the_token_file(corpus, tmp_path):
    manifest = prepare_dataset([corpus], tmp_path / "ds", page_tokens=PAGE)
    on_disk = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert on_disk == manifest.model_dump(mode="json", exclude_none=True)
    assert (manifest.format_version, manifest.tokenizer, manifest.vocab_size) == (2, "byte", 256)
    assert (manifest.dtype, manifest.eot_id, manifest.tokenizer_sha256) == ("uint8", 0, None)
    assert manifest.shards is not None and [s.name for s in manifest.shards] == ["shard-00000.bin"]
    assert len(manifest.dataset_id) == 16
    assert manifest.dataset_id == manifest.expected_id()
    PageDataset(tmp_path / "ds", verify=True)


def test_max_tokens_caps_the_stream_before_paging(corpus, tmp_path):
    manifest = prepare_dataset([corpus], tmp_path / "ds", page_tokens=PAGE, max_tokens=5 * PAGE + 3)
    assert manifest.num_pages == 5


def test_a_corpus_cut_by_max_tokens_is_reported_with_the_numbers(corpus, tmp_path):
    cuts = []
    prepare_dataset(
        [corpus], tmp_path / "ds", page_tokens=PAGE, max_tokens=5 * PAGE, on_cap=cuts.append
    )
    (cut,) = cuts
    assert (cut.max_tokens, cut.files) == (5 * PAGE, 4)
    assert 1 <= cut.file_index <= cut.files and cut.bytes_before < cut.total_bytes
    assert (
        f"--data.max_tokens cap of {5 * PAGE:,} tokens in file {cut.file_index} of 4"
        in cut.message()
    )


def test_a_corpus_under_max_tokens_is_not_reported(corpus, tmp_path):
    cuts = []
    prepare_dataset(
        [corpus], tmp_path / "ds", page_tokens=PAGE, max_tokens=10**6, on_cap=cuts.append
    )
    assert cuts == []


def test_the_cap_is_a_warning_in_the_log_by_default(corpus, tmp_path, caplog):
    prepare_dataset([corpus], tmp_path / "ds", page_tokens=PAGE, max_tokens=5 * PAGE)
    assert "stopped at the --data.max_tokens cap" in caplog.text


def test_data_prepare_says_in_one_line_that_the_cap_cut_the_corpus(corpus, tmp_path):
    argv = [sys.executable, "-m", "gauntlet.cli", "data", "prepare", "--source", str(corpus)]
    argv += ["--data.dataset_dir", str(tmp_path / "ds"), "--data.page_tokens", str(PAGE)]
    out = subprocess.run(
        [*argv, "--data.max_tokens", "320"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    (line,) = [x for x in out.stderr.splitlines() if "max_tokens" in x]
    assert line.startswith(
        "gauntlet data prepare: stopped at the --data.max_tokens cap of 320 tokens"
    )
    assert json.loads(out.stdout)["num_tokens"] == 5 * PAGE
    uncapped = subprocess.run(
        [*argv, "--data.max_tokens", "0"], capture_output=True, text=True, timeout=120
    )
    assert uncapped.returncode == 0 and "max_tokens" not in uncapped.stderr


def test_dataset_id_is_stable_across_runs(corpus, tmp_path):
    first = prepare_dataset([corpus], tmp_path / "one", page_tokens=PAGE)
    second = prepare_dataset([corpus], tmp_path / "two", page_tokens=PAGE)
    assert first == second


def test_dataset_id_changes_with_content_and_with_page_size(corpus, tmp_path):
    base = prepare_dataset([corpus], tmp_path / "one", page_tokens=PAGE).dataset_id
    other_pages = prepare_dataset([corpus], tmp_path / "two", page_tokens=PAGE // 2).dataset_id
    (corpus / "a.py").write_text("print('HELLO')\n")
    other_text = prepare_dataset([corpus], tmp_path / "three", page_tokens=PAGE).dataset_id
    assert len({base, other_pages, other_text}) == 3


def test_single_files_can_be_sources(corpus, tmp_path):
    manifest = prepare_dataset([corpus / "sub" / "c.md"], tmp_path / "ds", page_tokens=16)
    assert manifest.num_tokens == (len(CORPUS["sub/c.md"]) + 1) // 16 * 16


def test_nul_bytes_inside_documents_are_dropped(tmp_path):
    write_corpus(tmp_path / "c", {"x.txt": "ab\x00cd" * 40})
    prepare_dataset([tmp_path / "c"], tmp_path / "ds", page_tokens=8, validation_fraction=0.0)
    assert 0 not in (tmp_path / "ds" / "shard-00000.bin").read_bytes()[:160]


def test_too_small_a_corpus_is_an_error(corpus, tmp_path):
    with pytest.raises(DatasetError, match="no page left"):
        prepare_dataset([corpus], tmp_path / "ds", page_tokens=100_000)


def test_missing_source_is_an_error(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        prepare_dataset([tmp_path / "nowhere"], tmp_path / "ds")


def test_default_sources_are_the_stdlib_without_tests_or_site_packages():
    names = {p.name for p in default_sources()}
    assert "os.py" in names and "json" in names
    assert not names & {"test", "site-packages"}


@pytest.fixture
def small_default(corpus, monkeypatch):
    monkeypatch.setattr(prepare_module, "default_sources", lambda: [corpus])


def test_ensure_dataset_prepares_once_then_opens(small_default, tmp_path):
    first = ensure_dataset(tmp_path / "ds", page_tokens=PAGE, max_tokens=None)
    stamp = (tmp_path / "ds" / "shard-00000.bin").stat().st_mtime_ns
    second = ensure_dataset(tmp_path / "ds", page_tokens=PAGE, max_tokens=None)
    assert first.dataset_id == second.dataset_id
    assert (tmp_path / "ds" / "shard-00000.bin").stat().st_mtime_ns == stamp
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "ds"]


def test_ensure_dataset_rejects_another_page_size(small_default, tmp_path):
    ensure_dataset(tmp_path / "ds", page_tokens=PAGE, max_tokens=None)
    with pytest.raises(DatasetError, match="pages of"):
        ensure_dataset(tmp_path / "ds", page_tokens=PAGE * 2, max_tokens=None)


def test_ensure_dataset_that_loses_the_rename_race_uses_the_winner(
    small_default, tmp_path, monkeypatch
):
    out = tmp_path / "ds"
    real_prepare = prepare_module.prepare_dataset

    def prepare_while_another_process_wins(sources, tmp_dir, **kwargs):
        winner = real_prepare(sources, out, **kwargs)
        real_prepare(sources, tmp_dir, **kwargs)
        return winner

    monkeypatch.setattr(prepare_module, "prepare_dataset", prepare_while_another_process_wins)
    ds = ensure_dataset(out, page_tokens=PAGE, max_tokens=None)
    assert ds.dataset_id == PageDataset(out, verify=True).dataset_id
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "ds"]


ENSURE = """
import sys
from pathlib import Path
from gauntlet.data import ensure_dataset
ds = ensure_dataset(Path(sys.argv[1]), page_tokens=1024, max_tokens=200_000)
print(ds.dataset_id)
"""


def test_ensure_dataset_from_two_processes_at_once_leaves_one_valid_dataset(tmp_path):
    out = tmp_path / "shared" / "ds"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", ENSURE, str(out)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    ids = []
    for proc in procs:
        stdout, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        ids.append(stdout.strip())
    ds = PageDataset(out, verify=True)
    assert ids == [ds.dataset_id, ds.dataset_id]
    assert [p.name for p in out.parent.iterdir()] == ["ds"]
