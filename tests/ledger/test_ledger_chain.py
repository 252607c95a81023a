"""The ledger verifies across a lead change, and any tampering is found and named: a byte of a
record, a record removed or replaced, a payload hash re-signed by another key, a checkpoint
file altered or signed over another model. Real signed records in real filesystem buckets."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from ledger_helpers import LEAD_A, LEAD_B, NETUID, LedgerRun, contribution

from gauntlet.config import GauntletConfig
from gauntlet.ledger.fetch import LedgerOptions, build_ledger, directory_buckets
from gauntlet.ledger.verify import (
    LedgerError,
    check_checkpoint,
    find_model,
    open_manifest,
    walk_chain,
)
from gauntlet.model import build_model
from gauntlet.node.checkpoints import MODEL_FILE, save_checkpoint
from protocol.envelope import SignedEnvelope, canonical_json, seal
from protocol.keys import aggregation_record_key, checkpoint_file_key, checkpoint_manifest_key
from protocol.signing import keypair_from_uri, sign

ATTACKER = keypair_from_uri("//attacker")


@pytest.fixture
def run(tmp_path: Path) -> LedgerRun:
    return LedgerRun(tmp_path / "stores").build()


def _walk(run: LedgerRun, **kwargs):
    head = run.head
    assert head is not None
    return asyncio.run(walk_chain(run.buckets(), head.window, head.hotkey, **kwargs))


def _offline(run: LedgerRun, **options) -> object:
    config = GauntletConfig.model_validate({"chain": {"network": "sim", "netuid": NETUID}})
    return asyncio.run(build_ledger(config, LedgerOptions(stores=[run.root], **options)))


def test_the_chain_verifies_across_a_lead_change(run: LedgerRun) -> None:
    chain = _walk(run)
    assert [c.record.window for c in chain] == [0, 1, 2, 4, 5]
    assert [c.link for c in chain] == [run.links[w] for w in (0, 1, 2, 4, 5)]
    assert chain[0].record.previous is None
    assert chain[3].record.hotkey == LEAD_B.ss58_address
    assert chain[3].record.previous == run.links[2]  # B linked to A's record
    assert chain[3].record.previous.hotkey == LEAD_A.ss58_address  # type: ignore[union-attr]


def test_offline_from_a_directory_of_buckets_gives_the_same_chain(run: LedgerRun) -> None:
    result = _offline(run)
    assert [c.link for c in result.chain] == [run.links[w] for w in (0, 1, 2, 4, 5)]  # type: ignore[attr-defined]
    assert result.genesis  # type: ignore[attr-defined]
    assert len(directory_buckets([run.root]).everywhere) == 2


def test_from_window_stops_early(run: LedgerRun) -> None:
    chain = _walk(run, from_window=2)
    assert [c.record.window for c in chain] == [2, 4, 5]


def _flip_digit_of(raw: bytes, field: bytes) -> bytes:
    """``raw`` with the first digit after ``field`` in the envelope's body changed."""
    at = raw.index(field) + len(field)
    match = re.compile(rb"[0-9]").search(raw, at)
    assert match is not None
    digit = match.group()
    return raw[: match.start()] + (b"7" if digit != b"7" else b"8") + raw[match.end() :]


def test_a_flipped_byte_in_a_record_is_a_bad_signature_naming_its_window(run: LedgerRun) -> None:
    path = run.path(LEAD_A, aggregation_record_key(1, LEAD_A.ss58_address))
    path.write_bytes(_flip_digit_of(path.read_bytes(), b'validation_loss\\":'))
    with pytest.raises(LedgerError, match=r"^record of window 1 \(lead \w+\): bad_signature"):
        _walk(run)


def test_a_removed_record_is_a_broken_link_naming_its_window(run: LedgerRun) -> None:
    run.path(LEAD_A, aggregation_record_key(2, LEAD_A.ss58_address)).unlink()
    with pytest.raises(
        LedgerError, match=r"^record of window 2 .*broken link: the record of window 4 links to it"
    ):
        _walk(run)


def test_a_record_replaced_by_its_own_lead_is_a_hash_mismatch(run: LedgerRun) -> None:
    """Re-signed by the lead itself (a valid signature): the next record's link catches it."""
    changed = run.records[0].model_copy(update={"validation_loss": 9.0})
    raw = seal(changed, LEAD_A)
    run.path(LEAD_A, aggregation_record_key(0, LEAD_A.ss58_address)).write_bytes(raw)
    with pytest.raises(LedgerError, match=r"^record of window 0 .*hash mismatch"):
        _walk(run)


def test_a_payload_hash_re_signed_by_another_key_is_refused(run: LedgerRun) -> None:
    record = run.records[2]
    forged = record.model_copy(
        update={
            "contributions": [contribution(0, 0.25), contribution(1, 0.25), contribution(3, 0.5)]
        }
    )
    key = run.path(LEAD_A, aggregation_record_key(2, LEAD_A.ss58_address))
    body = canonical_json(forged)  # still claims lead A, signed by the attacker
    envelope = SignedEnvelope(
        signer=LEAD_A.ss58_address,
        body=body.decode(),
        signature=sign(ATTACKER, b"gauntlet/envelope/v1\x00" + body).hex(),
    )
    key.write_bytes(canonical_json(envelope))
    with pytest.raises(LedgerError, match=r"^record of window 2 .*bad_signature"):
        _walk(run)
    # or as the attacker's own record: the wrong author for the lead's key
    key.write_bytes(seal(forged.model_copy(update={"hotkey": ATTACKER.ss58_address}), ATTACKER))
    with pytest.raises(LedgerError, match=r"^record of window 2 .*wrong_author"):
        _walk(run)


def _checkpoint(run: LedgerRun, window: int, lead=LEAD_A):
    hotkey = lead.ss58_address
    manifest = open_manifest(
        run.path(lead, checkpoint_manifest_key(window, hotkey)).read_bytes(), window, hotkey
    )
    model = run.path(lead, checkpoint_file_key(window, hotkey, MODEL_FILE)).read_bytes()
    head = manifest.ledger_head
    assert head is not None
    chain = asyncio.run(walk_chain(run.buckets(), head.window, head.hotkey, sha256=head.sha256))
    return manifest, model, chain


def test_a_checkpoint_is_the_model_its_ledger_head_leads_to(run: LedgerRun) -> None:
    for window, lead, head in ((3, LEAD_A, 2), (5, LEAD_B, 4)):
        manifest, model, chain = _checkpoint(run, window, lead)
        check = check_checkpoint(manifest, model, chain)
        assert check.ledger_head == run.links[head] and chain[-1].record.window == head
        assert check.model_sha256 == chain[-1].record.model_sha256
    result = _offline(run, checkpoint_window=3)
    assert result.checkpoint.model_sha256 == run.records[2].model_sha256  # type: ignore[attr-defined]
    assert result.attribution.pending_window == 2  # type: ignore[attr-defined]


def test_an_altered_checkpoint_file_is_named(run: LedgerRun) -> None:
    manifest, model, chain = _checkpoint(run, 3)
    altered = bytearray(model)
    altered[-1] ^= 0x01
    with pytest.raises(
        LedgerError, match=r"^checkpoint of window 3: model.safetensors does not match"
    ):
        check_checkpoint(manifest, bytes(altered), chain)
    path = run.path(LEAD_A, checkpoint_file_key(3, LEAD_A.ss58_address, MODEL_FILE))
    path.write_bytes(bytes(altered))
    with pytest.raises(LedgerError, match=r"^checkpoint of window 3: "):
        _offline(run, checkpoint_window=3)


def test_a_checkpoint_signed_over_another_model_is_a_digest_mismatch(run: LedgerRun) -> None:
    """The lead's own signature on a model its records do not lead to (a buggy lead)."""
    store = run.store(LEAD_A)
    asyncio.run(
        save_checkpoint(
            store, LEAD_A, build_model("tiny", seed=99), netuid=NETUID, window=3,
            model_name="tiny", dataset_id="d0", ledger_head=run.links[2],
        )
    )  # fmt: skip
    manifest, model, chain = _checkpoint(run, 3)
    with pytest.raises(
        LedgerError, match=r"^checkpoint of window 3: model digest mismatch: .*record of window 2"
    ):
        check_checkpoint(manifest, model, chain)


def test_a_model_file_alone_is_traced_to_its_record(run: LedgerRun, tmp_path: Path) -> None:
    model = run.path(LEAD_B, checkpoint_file_key(5, LEAD_B.ss58_address, MODEL_FILE))
    result = _offline(run, model_file=model)
    assert result.model_record.record.window == 4  # type: ignore[attr-defined]
    chain = _walk(run)
    other = tmp_path / "other.safetensors"
    from safetensors.torch import save_file

    save_file({n: p.detach() for n, p in build_model("tiny", seed=1).named_parameters()}, other)
    from gauntlet.ledger.verify import model_digest_of

    with pytest.raises(LedgerError, match="model digest mismatch"):
        find_model(chain, model_digest_of(other.read_bytes(), "model file"))


def test_a_manifest_file_starts_the_walk(run: LedgerRun, tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_bytes(
        run.path(LEAD_B, checkpoint_manifest_key(5, LEAD_B.ss58_address)).read_bytes()
    )
    result = _offline(run, manifest=manifest)
    assert result.checkpoint.signer == LEAD_B.ss58_address  # type: ignore[attr-defined]
    assert result.checkpoint.model_sha256 == run.records[4].model_sha256  # type: ignore[attr-defined]
    assert [c.record.window for c in result.chain] == [0, 1, 2, 4]  # type: ignore[attr-defined]
    body = json.loads(json.loads(manifest.read_text())["body"])
    assert body["ledger_head"] == run.links[4].model_dump()
