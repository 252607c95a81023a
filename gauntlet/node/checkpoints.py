"""Checkpoints: θ at the start of a window as safetensors, with a signed, hashed manifest.

The lead validator writes one every ``validator.checkpoint_interval`` windows
(files first, the manifest last, so a manifest never names a missing file). A
node that starts late loads the newest one it can verify and replays the
windows after it. Loading never unpickles: safetensors only, and every name,
shape, size and hash is checked against the model and the signed manifest.
"""

from __future__ import annotations

import hashlib
import logging

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from gauntlet.storage.base import ObjectStore, StorageError
from protocol.envelope import open_envelope, seal
from protocol.errors import ProtocolError
from protocol.keys import (
    checkpoint_file_key,
    checkpoint_manifest_key,
    checkpoints_prefix,
    window_of_key,
)
from protocol.schemas import CheckpointFile, CheckpointManifest, RecordLink, TensorInfo
from protocol.signing import Signer

log = logging.getLogger(__name__)

MODEL_FILE = "model.safetensors"
_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}


class CheckpointError(Exception):
    """A checkpoint is absent, unverifiable or does not fit the model."""


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().to("cpu").contiguous() for name, p in model.named_parameters()}


async def save_checkpoint(
    store: ObjectStore,
    signer: Signer,
    model: nn.Module,
    *,
    netuid: int,
    window: int,
    model_name: str,
    dataset_id: str,
    ledger_head: RecordLink | None = None,
) -> CheckpointManifest:
    """Upload θ_window and its signed manifest, which names ``ledger_head``, the last
    aggregation record applied before θ_window; returns the manifest."""
    state = _state(model)
    data = save_safetensors(state)
    hotkey = signer.ss58_address
    await store.put(checkpoint_file_key(window, hotkey, MODEL_FILE), data)
    manifest = CheckpointManifest(
        netuid=netuid,
        window=window,
        hotkey=hotkey,
        model=model_name,
        dataset_id=dataset_id,
        tensors=[
            TensorInfo(name=n, dtype=_DTYPES[t.dtype], shape=list(t.shape))
            for n, t in state.items()
        ],  # type: ignore[arg-type]
        files=[
            CheckpointFile(name=MODEL_FILE, size=len(data), sha256=hashlib.sha256(data).hexdigest())
        ],
        ledger_head=ledger_head,
    )
    await store.put(checkpoint_manifest_key(window, hotkey), seal(manifest, signer))
    return manifest


async def checkpoint_windows(store: ObjectStore, hotkey: str) -> list[int]:
    """Windows for which ``hotkey`` has published a checkpoint manifest, newest first."""
    windows = set()
    async for info in store.list(checkpoints_prefix()):
        window = window_of_key(info.key)
        if window is not None and info.key == checkpoint_manifest_key(window, hotkey):
            windows.add(window)
    return sorted(windows, reverse=True)


async def load_checkpoint(
    store: ObjectStore,
    hotkey: str,
    window: int,
    model: nn.Module,
    *,
    netuid: int,
    model_name: str,
    dataset_id: str,
) -> CheckpointManifest:
    """Verify the checkpoint of ``window`` signed by ``hotkey`` and load it into ``model``."""
    expected = {name: (tuple(p.shape), p.dtype) for name, p in model.named_parameters()}
    limit = int(sum(p.numel() * p.element_size() for p in model.parameters()) * 1.05) + 2**20
    try:
        raw = await store.get(checkpoint_manifest_key(window, hotkey), max_bytes=2**24)
        manifest = open_envelope(
            raw, CheckpointManifest, expected_signer=hotkey, expected_window=window, max_bytes=2**24
        )
        if (manifest.netuid, manifest.model, manifest.dataset_id) != (
            netuid,
            model_name,
            dataset_id,
        ):
            raise CheckpointError(
                f"checkpoint is for netuid {manifest.netuid}, model {manifest.model}, dataset {manifest.dataset_id}"
            )
        declared = {t.name: tuple(t.shape) for t in manifest.tensors}
        if declared != {name: shape for name, (shape, _) in expected.items()}:
            raise CheckpointError("checkpoint tensors do not match the model's parameters")
        entry = next((f for f in manifest.files if f.name == MODEL_FILE), None)
        if entry is None or entry.size > limit:
            raise CheckpointError(f"checkpoint lacks {MODEL_FILE} or it is too large")
        data = await store.get(checkpoint_file_key(window, hotkey, MODEL_FILE), max_bytes=limit)
    except (StorageError, ProtocolError) as exc:
        raise CheckpointError(f"checkpoint of window {window}: {exc}") from exc
    if len(data) != entry.size or hashlib.sha256(data).hexdigest() != entry.sha256:
        raise CheckpointError(f"checkpoint of window {window}: file does not match its signed hash")
    state = _verified_state(data, manifest, window)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(state[name].to(device=p.device, dtype=p.dtype))
    return manifest


def _verified_state(
    data: bytes, manifest: CheckpointManifest, window: int
) -> dict[str, torch.Tensor]:
    """The file's tensors, checked like a contribution's before any reaches the model.

    The signature makes the lead accountable, not correct: a buggy or hostile
    lead can sign bytes that are not safetensors, tensors of another dtype than
    it declares, or NaN/Inf weights that would poison every node that loads them.
    """
    try:
        state = load_safetensors(data)
    except SafetensorError as exc:
        raise CheckpointError(f"checkpoint of window {window}: not safetensors ({exc})") from None
    declared = {t.name: (tuple(t.shape), t.dtype) for t in manifest.tensors}
    found = {n: (tuple(t.shape), _DTYPES.get(t.dtype, str(t.dtype))) for n, t in state.items()}
    if found != declared:
        raise CheckpointError(
            f"checkpoint of window {window}: file tensors (names, shapes, dtypes) differ "
            "from the manifest"
        )
    for name, tensor in state.items():
        if not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"checkpoint of window {window}: {name} holds NaN or Inf")
    return state
