"""Checkpoints round-trip through a real store and refuse anything that does not verify."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import torch

from gauntlet.chain.base import Metagraph, Neuron
from gauntlet.model import build_model
from gauntlet.node.checkpoints import (
    CheckpointError,
    checkpoint_windows,
    load_checkpoint,
    save_checkpoint,
)
from gauntlet.node.lead import lead_validator
from gauntlet.storage.filesystem import FilesystemStore
from protocol.keys import checkpoint_file_key
from protocol.signing import keypair_from_uri

LEAD = keypair_from_uri("//lead")
META = {"netuid": 1, "model_name": "tiny", "dataset_id": "d0"}


def _save(store: FilesystemStore, model: torch.nn.Module, window: int) -> None:
    asyncio.run(
        save_checkpoint(
            store, LEAD, model, netuid=1, window=window, model_name="tiny", dataset_id="d0"
        )
    )


def test_saved_checkpoint_loads_into_a_fresh_model(tmp_path: Path) -> None:
    store, source = FilesystemStore(tmp_path, "lead"), build_model("tiny", seed=5)
    _save(store, source, 10)
    _save(store, build_model("tiny", seed=6), 20)
    assert asyncio.run(checkpoint_windows(store, LEAD.ss58_address)) == [20, 10]
    target = build_model("tiny", seed=0)
    asyncio.run(load_checkpoint(store, LEAD.ss58_address, 10, target, **META))  # type: ignore[arg-type]
    for (name, p), q in zip(source.named_parameters(), target.parameters(), strict=True):
        assert torch.equal(p, q), name


def test_tampered_file_is_refused(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path, "lead")
    _save(store, build_model("tiny", seed=5), 10)
    path = store.base / checkpoint_file_key(10, LEAD.ss58_address, "model.safetensors")
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="signed hash"):
        asyncio.run(
            load_checkpoint(store, LEAD.ss58_address, 10, build_model("tiny", seed=0), **META)
        )  # type: ignore[arg-type]


def test_checkpoint_signed_by_someone_else_is_refused(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path, "lead")
    _save(store, build_model("tiny", seed=5), 10)
    other = keypair_from_uri("//other").ss58_address
    with pytest.raises(CheckpointError):
        asyncio.run(load_checkpoint(store, other, 10, build_model("tiny", seed=0), **META))  # type: ignore[arg-type]


def test_checkpoint_for_another_model_or_dataset_is_refused(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path, "lead")
    _save(store, build_model("tiny", seed=5), 10)
    with pytest.raises(CheckpointError, match="dataset"):
        asyncio.run(
            load_checkpoint(
                store,
                LEAD.ss58_address,
                10,
                build_model("tiny", seed=0),
                netuid=1,
                model_name="tiny",
                dataset_id="other",
            )
        )


def _neuron(uid: int, stake: float, permit: bool) -> Neuron:
    return Neuron(
        uid=uid,
        hotkey=f"hk{uid}",
        coldkey="ck",
        stake=stake,
        validator_permit=permit,
        last_update=0,
    )


def test_lead_is_the_highest_stake_permit_holder_ties_to_lowest_uid() -> None:
    neurons = (
        _neuron(0, 10, True),
        _neuron(1, 50, True),
        _neuron(2, 50, True),
        _neuron(3, 99, False),
    )
    assert lead_validator(Metagraph(netuid=1, block=0, neurons=neurons)).uid == 1  # type: ignore[union-attr]
    assert lead_validator(Metagraph(netuid=1, block=0, neurons=(_neuron(3, 99, False),))) is None
