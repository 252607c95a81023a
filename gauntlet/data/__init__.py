"""Tokenised training data: tokenizers (bytes or a Hugging Face tokenizer.json),
dataset preparation into sharded pages, page/batch access for miners and
validators, and datasets in object storage."""

from gauntlet.data.manifest import DatasetError, DatasetManifest, ShardInfo
from gauntlet.data.pages import PageDataset
from gauntlet.data.prepare import (
    DEFAULT_SHARD_BYTES,
    default_sources,
    ensure_dataset,
    prepare_dataset,
    prepare_from_cli,
)
from gauntlet.data.remote import download_dataset, upload_dataset
from gauntlet.data.tokenizer import ByteTokenizer, HFTokenizer, Tokenizer, load_tokenizer

__all__ = [
    "DEFAULT_SHARD_BYTES",
    "ByteTokenizer",
    "DatasetError",
    "DatasetManifest",
    "HFTokenizer",
    "PageDataset",
    "ShardInfo",
    "Tokenizer",
    "default_sources",
    "download_dataset",
    "ensure_dataset",
    "load_tokenizer",
    "prepare_dataset",
    "prepare_from_cli",
    "upload_dataset",
]
