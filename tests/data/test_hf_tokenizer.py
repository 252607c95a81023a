"""Hugging Face tokenizer.json: a tiny BPE trained here (no download) drives
preparation; the manifest records its identity and the dataset follows its
vocabulary."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from data_helpers import DOCUMENTS, train_tiny_bpe

from gauntlet.data import (
    DatasetError,
    HFTokenizer,
    PageDataset,
    load_tokenizer,
    prepare_dataset,
    prepare_from_cli,
)
from gauntlet.data.prepare import default_sources

PAGE = 32


@pytest.fixture(scope="module")
def tokenizer_json(tmp_path_factory) -> Path:
    # A few KB of real stdlib prose and code, plus the test corpus.
    stdlib = next(p for p in default_sources() if p.name == "textwrap.py")
    texts = [stdlib.read_text()[:8000], *DOCUMENTS]
    return train_tiny_bpe(tmp_path_factory.mktemp("tok") / "tokenizer.json", texts)


def test_tokenizer_json_round_trips_text(tokenizer_json):
    tok = HFTokenizer(tokenizer_json)
    text = "def wrap(text, width=70):\n    caf\u00e9 \u2603"
    ids = tok.encode_batch([text])[0]
    assert len(ids) < len(text.encode())  # merges were learned
    assert tok.decode(ids.tolist()) == text


def test_tokenizer_identity_and_eos(tokenizer_json):
    tok = HFTokenizer(tokenizer_json)
    assert tok.name == "hf:bpe"
    assert tok.sha256 == hashlib.sha256(tokenizer_json.read_bytes()).hexdigest()
    assert tok.eot_id == tok._tok.token_to_id("<|endoftext|>")
    assert 256 < tok.vocab_size <= 400


def test_a_named_eos_token_must_exist(tokenizer_json):
    with pytest.raises(DatasetError, match="'<eos>'"):
        HFTokenizer(tokenizer_json, eos_token="<eos>")


def test_dataset_follows_the_tokenizer(corpus, tokenizer_json, tmp_path):
    manifest = prepare_from_cli(
        [corpus], tmp_path / "ds", tokenizer=tokenizer_json, page_tokens=PAGE, progress=False
    )
    tok = HFTokenizer(tokenizer_json)
    assert (manifest.tokenizer, manifest.vocab_size) == ("hf:bpe", tok.vocab_size)
    assert manifest.tokenizer_sha256 == tok.sha256
    assert (manifest.dtype, manifest.eot_id) == ("uint16", tok.eot_id)
    ds = PageDataset(tmp_path / "ds", verify=True)
    assert ds.vocab_size == tok.vocab_size
    stream = np.concatenate([ds.page(i) for i in range(ds.num_pages)])
    expected = np.concatenate([np.append(tok.encode_batch([d])[0], tok.eot_id) for d in DOCUMENTS])
    np.testing.assert_array_equal(stream, expected[: len(stream)])
    first_doc = stream[: int(np.argmax(stream == tok.eot_id))]
    assert tok.decode(first_doc.tolist()) == DOCUMENTS[0]


def test_dataset_id_depends_on_the_tokenizer(corpus, tokenizer_json, tmp_path):
    other = train_tiny_bpe(tmp_path / "other.json", DOCUMENTS, vocab_size=300)
    ids = {
        prepare_dataset(
            [corpus], tmp_path / f"ds{i}", page_tokens=PAGE, tokenizer=load_tokenizer(path)
        ).dataset_id
        for i, path in enumerate([None, tokenizer_json, other])
    }
    assert len(ids) == 3


def test_a_broken_tokenizer_file_is_a_dataset_error(tmp_path):
    path = tmp_path / "tokenizer.json"
    path.write_text('{"model": {}}')
    with pytest.raises(DatasetError, match="not a usable tokenizer.json"):
        HFTokenizer(path)
