"""The stdlib page dataset the model benches train and measure on (import after the
sys.path line): its command-line options and opening it, prepared on first use."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from gauntlet.data import PageDataset, ensure_dataset

PAGE_TOKENS = 4096  # the default `data.page_tokens`, as the localnet prepares it
MAX_TOKENS = 4_000_000  # a few hundred pages: enough for every bench, prepared in seconds


def add_dataset_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset-dir", type=Path, default=Path("~/.gauntlet/data/stdlib"))
    parser.add_argument("--seed", type=int, default=0)


def parse_and_open(parser: argparse.ArgumentParser) -> tuple[argparse.Namespace, PageDataset]:
    """The command line (with :func:`add_dataset_options`), torch seeded by ``--seed``, and
    the dataset."""
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    dataset = ensure_dataset(
        args.dataset_dir.expanduser(), page_tokens=PAGE_TOKENS, max_tokens=MAX_TOKENS
    )
    return args, dataset
