"""Tokenised training data: a byte tokenizer, dataset preparation into pages,
and page/batch access for miners and validators."""

from gauntlet.data.manifest import DatasetError, DatasetManifest
from gauntlet.data.pages import PageDataset
from gauntlet.data.prepare import default_sources, ensure_dataset, prepare_dataset
from gauntlet.data.tokenizer import ByteTokenizer

__all__ = [
    "ByteTokenizer",
    "DatasetError",
    "DatasetManifest",
    "PageDataset",
    "default_sources",
    "ensure_dataset",
    "prepare_dataset",
]
