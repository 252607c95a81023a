"""Verifying the contribution ledger over fetched bytes (SPEC section 8.7).

Nothing here reads a bucket: a :class:`RecordSource` hands over the stored bytes of a
record, and every rule is checked on them. The first fault stops the walk with a
:class:`LedgerError` whose message names the record's window (or the checkpoint's) and
what is wrong: a bad signature or author, a record missing from its lead's bucket (a
broken link), bytes that differ from the hash the next record names, a netuid that
changes, fields the ledger needs that are absent, a checkpoint that does not match.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from protocol.envelope import open_envelope
from protocol.errors import ProtocolError
from protocol.ledger import MAX_RECORD_BYTES, StoredRecord, record_sha256, safetensors_digest
from protocol.schemas import AggregationRecord, CheckpointManifest, RecordLink

Buffer = bytes | memoryview  # a model file: read, or memory-mapped
MODEL_FILE = "model.safetensors"  # the one file the reference lead writes per checkpoint


class LedgerError(Exception):
    """The chain (or a checkpoint) does not verify; the message says where and why."""


class RecordSource(Protocol):
    """Where the records are: ``None`` when the lead's bucket does not hold the record."""

    async def record(self, window: int, hotkey: str) -> bytes | None: ...


def record_name(window: int, hotkey: str) -> str:
    return f"record of window {window} (lead {hotkey})"


def open_record(
    raw: bytes, window: int, hotkey: str, *, sha256: str | None = None, netuid: int | None = None
) -> StoredRecord:
    """Check one record's stored bytes: the envelope is valid and signed by ``hotkey`` for
    ``window``, the bytes hash to ``sha256`` (what the next record names; None for a head
    found by listing), the netuid is the chain's, and the ledger fields are there."""
    what = record_name(window, hotkey)
    try:
        record = open_envelope(
            raw,
            AggregationRecord,
            expected_signer=hotkey,
            expected_window=window,
            max_bytes=MAX_RECORD_BYTES,
        )
    except ProtocolError as exc:
        raise LedgerError(f"{what}: {exc}") from None
    digest = record_sha256(raw)
    if sha256 is not None and digest != sha256:
        raise LedgerError(
            f"{what}: hash mismatch: its bytes hash to {digest[:16]}..., the ledger links to "
            f"{sha256[:16]}... (the record was replaced after the next one linked to it)"
        )
    if netuid is not None and record.netuid != netuid:
        raise LedgerError(f"{what}: for netuid {record.netuid}, the ledger is netuid {netuid}")
    missing = [
        name for name in ("model_sha256", "validation_loss") if getattr(record, name) is None
    ]
    if any(c.share is None for c in record.contributions):
        missing.append("shares")
    if missing:
        raise LedgerError(f"{what}: no {', '.join(missing)} (written before the ledger)")
    return StoredRecord(record, digest)


async def walk_chain(
    source: RecordSource,
    window: int,
    hotkey: str,
    *,
    sha256: str | None = None,
    from_window: int | None = None,
    netuid: int | None = None,
) -> list[StoredRecord]:
    """Verify the chain from the record of ``window`` by ``hotkey`` back to the first record
    (``previous`` null) or to the oldest record at or after ``from_window``; oldest first.
    ``sha256`` pins the head's bytes (a checkpoint's ``ledger_head``); the netuid is the
    head's unless given. Links strictly decrease in window (the schema), so the walk ends."""
    chain: list[StoredRecord] = []
    link: RecordLink | None = None
    while True:
        raw = await source.record(window, hotkey)
        if raw is None:
            named_by = (
                "it is the ledger head asked for"
                if not chain
                else f"broken link: the record of window {chain[-1].record.window} links to it"
            )
            raise LedgerError(
                f"{record_name(window, hotkey)}: missing: {named_by}, but the lead's bucket "
                "does not hold it"
            )
        found = open_record(raw, window, hotkey, sha256=sha256, netuid=netuid)
        netuid = found.record.netuid
        chain.append(found)
        link = found.record.previous
        if link is None or (from_window is not None and link.window < from_window):
            break
        window, hotkey, sha256 = link.window, link.hotkey, link.sha256
    chain.reverse()
    return chain


@dataclass(frozen=True)
class CheckpointCheck:
    """What was verified of a checkpoint against the chain."""

    window: int
    signer: str
    ledger_head: RecordLink | None
    model_sha256: str | None  # digest of its model file; None when the file was not checked


def open_manifest(raw: bytes, window: int | None, signer: str | None) -> CheckpointManifest:
    """A checkpoint manifest's envelope, signed by ``signer`` (any when None) for ``window``."""
    what = "checkpoint" if window is None else f"checkpoint of window {window}"
    try:
        return open_envelope(
            raw, CheckpointManifest, expected_signer=signer, expected_window=window
        )
    except ProtocolError as exc:
        raise LedgerError(f"{what}: {exc}") from None


def check_checkpoint(
    manifest: CheckpointManifest, model_file: Buffer | None, chain: Sequence[StoredRecord]
) -> CheckpointCheck:
    """A checkpoint against the chain walked from its ``ledger_head`` (``chain[-1]`` is that
    record): the model file matches the manifest's signed size and SHA-256, and its model
    digest is the one the head record says it leads to (windows after the head had no
    record, so θ did not change)."""
    what = f"checkpoint of window {manifest.window}"
    head = manifest.ledger_head
    if head is not None and (not chain or chain[-1].link != head):
        raise LedgerError(f"{what}: its ledger head is not the head of the chain verified")
    if model_file is None:
        return CheckpointCheck(manifest.window, manifest.hotkey, head, None)
    entry = next((f for f in manifest.files if f.name == MODEL_FILE), None)
    if entry is None:
        raise LedgerError(f"{what}: the manifest lists no {MODEL_FILE}")
    if len(model_file) != entry.size or hashlib.sha256(model_file).hexdigest() != entry.sha256:
        raise LedgerError(f"{what}: {MODEL_FILE} does not match its signed size and sha256")
    digest = model_digest_of(model_file, what)
    if head is not None and digest != chain[-1].record.model_sha256:
        raise LedgerError(
            f"{what}: model digest mismatch: the model is {digest[:16]}..., the record of "
            f"window {head.window} leads to {str(chain[-1].record.model_sha256)[:16]}..."
        )
    return CheckpointCheck(manifest.window, manifest.hotkey, head, digest)


def model_digest_of(model_file: Buffer, what: str) -> str:
    try:
        return safetensors_digest(model_file)
    except ProtocolError as exc:
        raise LedgerError(f"{what}: {exc}") from None


def find_model(chain: Sequence[StoredRecord], digest: str) -> StoredRecord:
    """The newest record that leads to the model of ``digest`` (a model file checked without
    a manifest); :class:`LedgerError` when no record of the chain does."""
    for found in reversed(chain):
        if found.record.model_sha256 == digest:
            return found
    raise LedgerError(
        f"model file: model digest mismatch: no record of the chain verified leads to "
        f"{digest[:16]}..."
    )
