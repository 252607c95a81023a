"""Checkpoints round-trip through a real store and refuse anything that does not verify."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest
import torch
from safetensors.torch import save as save_safetensors

from gauntlet.chain.base import Metagraph, Neuron
from gauntlet.model import build_model
from gauntlet.node.checkpoints import (
    MODEL_FILE,
    CheckpointError,
    checkpoint_windows,
    load_checkpoint,
    save_checkpoint,
)
from gauntlet.node.lead import lead_validator
from gauntlet.storage.filesystem import FilesystemStore
from protocol.envelope import seal
from protocol.keys import checkpoint_file_key, checkpoint_manifest_key
from protocol.schemas import CheckpointFile, CheckpointManifest, TensorInfo
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


# --- a lead-signed checkpoint is still checked like a contribution ---------------------------------


def _publish_signed(
    store: FilesystemStore, window: int, data: bytes, model: torch.nn.Module
) -> None:
    """``data`` as the checkpoint file of ``window``, under a valid lead-signed manifest that
    declares ``model``'s parameters as F32 and names the file's true hash."""
    key = checkpoint_file_key(window, LEAD.ss58_address, MODEL_FILE)
    asyncio.run(store.put(key, data))
    manifest = CheckpointManifest(
        netuid=1,
        window=window,
        hotkey=LEAD.ss58_address,
        model="tiny",
        dataset_id="d0",
        tensors=[
            TensorInfo(name=n, dtype="F32", shape=list(p.shape))
            for n, p in model.named_parameters()
        ],
        files=[
            CheckpointFile(name=MODEL_FILE, size=len(data), sha256=hashlib.sha256(data).hexdigest())
        ],
    )
    asyncio.run(store.put(checkpoint_manifest_key(window, LEAD.ss58_address), seal(manifest, LEAD)))


def _load_refused(store: FilesystemStore, window: int, match: str) -> None:
    target = build_model("tiny", seed=0)
    before = {n: p.detach().clone() for n, p in target.named_parameters()}
    with pytest.raises(CheckpointError, match=match):
        asyncio.run(load_checkpoint(store, LEAD.ss58_address, window, target, **META))  # type: ignore[arg-type]
    for name, p in target.named_parameters():  # refused before touching the model
        assert torch.equal(p, before[name]), name


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().contiguous() for n, p in model.named_parameters()}


def test_signed_checkpoint_that_is_not_safetensors_is_a_checkpoint_error(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path, "lead")
    _publish_signed(store, 10, b"this is not a safetensors file", build_model("tiny", seed=5))
    _load_refused(store, 10, "not safetensors")


def test_signed_checkpoint_whose_dtype_differs_from_the_manifest_is_refused(tmp_path: Path) -> None:
    store, source = FilesystemStore(tmp_path, "lead"), build_model("tiny", seed=5)
    halves = {n: t.to(torch.float16) for n, t in _weights(source).items()}
    _publish_signed(store, 10, save_safetensors(halves), source)
    _load_refused(store, 10, "dtypes")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_signed_checkpoint_with_non_finite_weights_is_refused(tmp_path: Path, value) -> None:
    store, source = FilesystemStore(tmp_path, "lead"), build_model("tiny", seed=5)
    weights = {n: t.clone() for n, t in _weights(source).items()}
    weights[next(iter(weights))].view(-1)[3] = value
    _publish_signed(store, 10, save_safetensors(weights), source)
    _load_refused(store, 10, "NaN or Inf")


def test_signed_checkpoint_built_by_the_test_helper_loads(tmp_path: Path) -> None:
    # The refusals above are about their one fault, not about the helper.
    store, source = FilesystemStore(tmp_path, "lead"), build_model("tiny", seed=5)
    _publish_signed(store, 10, save_safetensors(_weights(source)), source)
    target = build_model("tiny", seed=0)
    asyncio.run(load_checkpoint(store, LEAD.ss58_address, 10, target, **META))  # type: ignore[arg-type]
    assert all(
        torch.equal(p, q) for p, q in zip(source.parameters(), target.parameters(), strict=True)
    )
