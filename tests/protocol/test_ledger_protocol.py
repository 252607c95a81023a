"""The ledger's wire rules: the model digest (worked vector of SPEC section 8.7, a
checkpoint's file against a live model), the record and manifest schema rules, and the keys
retention prunes (every artifact folder but the records)."""

from __future__ import annotations

import hashlib
import struct

import pytest
import torch
from pydantic import ValidationError
from safetensors.torch import save as save_safetensors

from gauntlet.ledger.digest import model_sha256, model_sha256_after
from gauntlet.model import build_model
from gauntlet.train.outer import apply_delta
from protocol import keys
from protocol.errors import MalformedPayload
from protocol.ledger import model_digest, safetensors_digest
from protocol.schemas import AggregatedContribution, AggregationRecord, CheckpointManifest

# SPEC section 8.7's worked example: "weight" F32 [2] = (1.0, 2.0), "bias" F32 [] = -0.5.
VECTOR_DIGEST = "5f0697c8494acd900302db75c9671c9468810e13481ebead6402ed08a4247693"


def test_the_worked_model_digest() -> None:
    weight, bias = struct.pack("<2f", 1.0, 2.0), struct.pack("<f", -0.5)
    assert weight.hex() == "0000803f00000040"
    entries = [
        ("weight", "F32", [2], hashlib.sha256(weight).hexdigest()),
        ("bias", "F32", [], hashlib.sha256(bias).hexdigest()),
    ]
    assert model_digest(entries) == VECTOR_DIGEST
    state = {"weight": torch.tensor([1.0, 2.0]), "bias": torch.tensor(-0.5)}
    assert safetensors_digest(save_safetensors(state)) == VECTOR_DIGEST


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_saved_model_file_has_the_live_models_digest(dtype: torch.dtype) -> None:
    model = build_model("tiny", seed=4).to(dtype)
    state = {n: p.detach().contiguous() for n, p in model.named_parameters()}
    assert safetensors_digest(save_safetensors(state)) == model_sha256(model)


def test_the_digest_after_a_step_is_the_digest_of_the_stepped_model() -> None:
    model = build_model("tiny", seed=4)
    delta = {n: torch.randn_like(p) * 1e-3 for n, p in model.named_parameters()}
    expected = model_sha256_after(model, delta, 0.7)
    assert model_sha256(model) != expected  # the model itself is untouched
    apply_delta(model, delta, 0.7)
    assert model_sha256(model) == expected


def test_a_model_file_that_is_not_a_model_is_refused() -> None:
    ints = save_safetensors({"x": torch.zeros(2, dtype=torch.int64)})
    with pytest.raises(MalformedPayload, match="not a model dtype"):
        safetensors_digest(ints)
    good = save_safetensors({"x": torch.zeros(2)})
    with pytest.raises(MalformedPayload):
        safetensors_digest(good[:-4])  # the data section is cut short
    with pytest.raises(MalformedPayload):
        safetensors_digest(b"\x00" * 4)


def _record(**fields) -> AggregationRecord:
    base = {
        "netuid": 1, "window": 5, "hotkey": "lead", "peer_set_window": 0, "fingerprint": [],
        "contributions": [
            {"uid": 1, "hotkey": "a", "sha256": "0" * 64, "share": 0.25},
            {"uid": 2, "hotkey": "b", "sha256": "1" * 64, "share": 0.75},
        ],
    }  # fmt: skip
    return AggregationRecord.model_validate(base | fields)


def test_record_schema_rules() -> None:
    assert _record().previous is None  # the ledger fields may be absent (an older record)
    link = {"window": 4, "hotkey": "lead", "sha256": "2" * 64}
    assert _record(previous=link).previous.window == 4  # type: ignore[union-attr]
    for bad in ({"window": 5, "hotkey": "lead", "sha256": "2" * 64}, {**link, "sha256": "XY"}):
        with pytest.raises(ValidationError):
            _record(previous=bad)
    with pytest.raises(ValidationError, match="sum to"):
        _record(contributions=[{"uid": 1, "hotkey": "a", "sha256": "0" * 64, "share": 0.5}])
    with pytest.raises(ValidationError, match="others none"):
        _record(
            contributions=[
                {"uid": 1, "hotkey": "a", "sha256": "0" * 64, "share": 1.0},
                {"uid": 2, "hotkey": "b", "sha256": "1" * 64},
            ]
        )
    with pytest.raises(ValidationError):
        AggregatedContribution(uid=1, hotkey="a", sha256="0" * 64, share=1.5)


def test_a_manifests_ledger_head_is_before_its_window() -> None:
    base = {
        "netuid": 1, "window": 5, "hotkey": "lead", "model": "tiny", "dataset_id": "d",
        "tensors": [], "files": [{"name": "model.safetensors", "size": 1, "sha256": "0" * 64}],
    }  # fmt: skip
    head = {"window": 4, "hotkey": "lead", "sha256": "2" * 64}
    assert CheckpointManifest.model_validate(base | {"ledger_head": head}).ledger_head
    with pytest.raises(ValidationError, match="not before"):
        CheckpointManifest.model_validate(base | {"ledger_head": {**head, "window": 5}})


def test_retention_prunes_every_artifact_folder_but_the_records() -> None:
    hotkey = "5Abc"
    built = [
        keys.contribution_key(7, hotkey), keys.reveal_key(7, hotkey), keys.arrivals_key(7, hotkey),
        keys.window_report_key(7, hotkey), keys.peer_set_key(7, hotkey),
        keys.checkpoint_manifest_key(7, hotkey), keys.checkpoint_file_key(7, hotkey, "model.safetensors"),
        keys.validator_state_key(7, hotkey), keys.mirror_key(7, hotkey),
    ]  # fmt: skip
    key_builders = [n for n in dir(keys) if n.endswith("_key") and n != "window_of_key"]
    assert len(key_builders) == len(built) + 1  # the record's key is the one kept
    pruned = keys.pruned_prefixes()
    for key in built:
        assert sum(key.startswith(p) for p in pruned) == 1, key
    assert not any(keys.aggregation_record_key(7, hotkey).startswith(p) for p in pruned)
