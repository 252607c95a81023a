"""``gauntlet ledger``'s I/O: find the buckets, fetch the records, checkpoints and payloads,
and hand the bytes to :mod:`.verify` and :mod:`.attribution`.

Buckets come from the chain (each hotkey's bucket commitment, read as nodes read them) or,
offline, from directories of filesystem buckets (``--stores``: a bucket directory, the one
holding ``gauntlet/``, or a directory of them, such as a localnet run's ``stores/``; a
mirror of S3 buckets made with ``rclone sync`` works the same). Nothing needs a wallet.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gauntlet.config.schema import GauntletConfig
from gauntlet.ledger.attribution import Attribution, attribute
from gauntlet.ledger.verify import (
    MODEL_FILE,
    CheckpointCheck,
    LedgerError,
    check_checkpoint,
    find_model,
    model_digest_of,
    open_manifest,
    record_name,
    walk_chain,
)
from gauntlet.node.peers import PeerDirectory
from gauntlet.storage.base import ObjectNotFound, ObjectStore
from gauntlet.storage.filesystem import FilesystemStore
from protocol.errors import ProtocolError
from protocol.keys import (
    aggregation_record_key,
    aggregations_prefix,
    checkpoint_file_key,
    checkpoint_manifest_key,
    checkpoints_prefix,
    contribution_key,
    reveal_key,
    window_of_key,
)
from protocol.ledger import MAX_RECORD_BYTES, StoredRecord
from protocol.schemas import CheckpointManifest
from protocol.sealed import MAX_REVEAL_BYTES, open_reveal, open_sealed, unseal

MAX_MANIFEST_BYTES = 1 << 24


@dataclass(frozen=True)
class LedgerOptions:
    lead: str | None = None  # whose records to start from (default: the chain's lead)
    checkpoint_window: int | None = None  # start from the lead's checkpoint of this window
    manifest: Path | None = None  # start from a downloaded checkpoint manifest
    model_file: Path | None = None  # a downloaded model file to trace to its record
    from_window: int | None = None  # verify and attribute back to this window only
    check_payloads: bool = False
    stores: Sequence[Path] = ()  # offline: filesystem buckets instead of the chain


@dataclass(frozen=True)
class PayloadCheck:
    checked: int
    not_retained: int  # pruned by their authors (retention): could not be checked


@dataclass(frozen=True)
class LedgerResult:
    chain: list[StoredRecord]  # oldest first
    attribution: Attribution
    genesis: bool  # the walk reached the first record of the ledger
    checkpoint: CheckpointCheck | None = None
    model_record: StoredRecord | None = None  # the record a --model-file alone leads to
    payloads: PayloadCheck | None = None
    notes: list[str] = field(default_factory=list)


class Buckets:
    """Stores to read each hotkey's objects from: its committed bucket (``by_hotkey``), or
    every bucket given (``everywhere``; a key is looked up in each in turn)."""

    def __init__(
        self, by_hotkey: dict[str, ObjectStore | None], everywhere: Sequence[ObjectStore] = ()
    ) -> None:
        self.by_hotkey = by_hotkey
        self.everywhere = list(everywhere)

    def stores_for(self, hotkey: str) -> list[ObjectStore]:
        if self.everywhere:
            return self.everywhere
        store = self.by_hotkey.get(hotkey)
        return [] if store is None else [store]

    async def get(self, hotkey: str, key: str, max_bytes: int) -> bytes | None:
        """The object ``key`` of ``hotkey``; None when no bucket of its holds it."""
        for store in self.stores_for(hotkey):
            with contextlib.suppress(ObjectNotFound):
                return await store.get(key, max_bytes=max_bytes)
        return None

    async def record(self, window: int, hotkey: str) -> bytes | None:
        if not self.stores_for(hotkey):
            raise LedgerError(
                f"{record_name(window, hotkey)}: the lead has no readable bucket commitment "
                "on chain (no longer registered?); read its bucket with --stores"
            )
        return await self.get(hotkey, aggregation_record_key(window, hotkey), MAX_RECORD_BYTES)

    async def record_heads(self, hotkey: str | None) -> list[tuple[int, str]]:
        """(window, lead) of every record in reach (of ``hotkey`` only, if given), newest first."""
        found: set[tuple[int, str]] = set()
        stores = self.stores_for(hotkey) if hotkey is not None else self.everywhere
        for store in stores:
            async for info in store.list(aggregations_prefix()):
                window, name = window_of_key(info.key), info.key.rsplit("/", 1)[-1]
                if window is not None and name.endswith(".json"):
                    author = name.removesuffix(".json")
                    if hotkey is None or author == hotkey:
                        found.add((window, author))
        return sorted(found, reverse=True)


def directory_buckets(paths: Sequence[Path]) -> Buckets:
    """Filesystem buckets: each path is a bucket (it holds ``gauntlet/``) or a directory of them."""
    stores: list[ObjectStore] = []
    for path in paths:
        path = path.expanduser().resolve()
        candidates = [path] if (path / "gauntlet").is_dir() else sorted(path.iterdir())
        for bucket in candidates:
            if (bucket / "gauntlet").is_dir():
                stores.append(FilesystemStore(bucket.parent, bucket.name, create=False))
    if not stores:
        raise LedgerError(
            f"no bucket (a directory holding gauntlet/) under {', '.join(map(str, paths))}"
        )
    return Buckets({}, stores)


async def chain_buckets(config: GauntletConfig) -> tuple[Buckets, str | None, PeerDirectory]:
    """Every committed bucket by hotkey, the chain's lead validator now, and what to close."""
    from gauntlet.chain.factory import build_chain
    from gauntlet.node.lead import lead_validator

    chain = build_chain(config.chain, None)
    directory = PeerDirectory.for_config(config)
    try:
        metagraph = await chain.metagraph()
        commitments = await chain.commitments()
    finally:
        await chain.close()
    lead = lead_validator(metagraph)
    stores = {hotkey: directory.store_for(hotkey, raw) for hotkey, raw in commitments.items()}
    return Buckets(stores), (lead.hotkey if lead is not None else None), directory


async def build_ledger(config: GauntletConfig, options: LedgerOptions) -> LedgerResult:
    """Verify the ledger as ``options`` ask and attribute it (:class:`LedgerError` on a fault)."""
    closing: PeerDirectory | None = None
    if options.stores:
        buckets, lead = directory_buckets(options.stores), options.lead
    else:
        buckets, lead, closing = await chain_buckets(config)
        lead = options.lead or lead
    try:
        return await _build(config, options, buckets, lead)
    finally:
        if closing is not None:
            await closing.close()


async def _build(
    config: GauntletConfig, options: LedgerOptions, buckets: Buckets, lead: str | None
) -> LedgerResult:
    netuid = None if options.stores else config.chain.netuid
    notes: list[str] = []
    manifest: CheckpointManifest | None = None
    model_path = options.model_file
    with tempfile.TemporaryDirectory(prefix="gauntlet-ledger-") as scratch:
        if options.manifest is not None:
            manifest = open_manifest(options.manifest.read_bytes(), None, options.lead)
        elif options.checkpoint_window is not None:
            if lead is None and options.stores:  # offline: whoever signed that checkpoint
                lead = await _checkpoint_author(buckets, options.checkpoint_window)
            manifest = await _lead_manifest(buckets, _need(lead), options.checkpoint_window)
        if manifest is not None and model_path is None:
            model_path = await _fetch_model(buckets, manifest, Path(scratch) / MODEL_FILE)
            if model_path is None:
                notes.append(
                    f"checkpoint of window {manifest.window}: its model file is not in the "
                    "lead's bucket (retention?): the file was not checked"
                )
        if manifest is not None:
            if manifest.ledger_head is None:
                raise LedgerError(
                    f"checkpoint of window {manifest.window}: no ledger head (no record was "
                    "applied before it, or it predates the ledger): nothing to trace"
                )
            head = manifest.ledger_head
            chain = await walk_chain(
                buckets, head.window, head.hotkey, sha256=head.sha256,
                from_window=options.from_window, netuid=netuid,
            )  # fmt: skip
        else:
            window, author = await _latest(buckets, lead)
            chain = await walk_chain(
                buckets, window, author, from_window=options.from_window, netuid=netuid
            )
        checkpoint, model_record = None, None
        with _mapped(model_path) as model_bytes:
            if manifest is not None:
                checkpoint = check_checkpoint(manifest, model_bytes, chain)
            elif model_bytes is not None:
                model_record = find_model(chain, model_digest_of(model_bytes, "model file"))
    payloads = None
    if options.check_payloads:
        payloads = await check_payloads(buckets, chain, config.storage.max_payload_bytes)
        if payloads.not_retained:
            notes.append(
                f"{payloads.not_retained} recorded payloads are no longer stored by their "
                "authors (retention): not checked"
            )
    return LedgerResult(
        chain=chain,
        attribution=attribute([c.record for c in chain]),
        genesis=chain[0].record.previous is None,
        checkpoint=checkpoint,
        model_record=model_record,
        payloads=payloads,
        notes=notes,
    )


def _need(lead: str | None) -> str:
    if lead is None:
        raise LedgerError("no lead validator: name one with --lead")
    return lead


async def _latest(buckets: Buckets, lead: str | None) -> tuple[int, str]:
    """(window, lead) of ``lead``'s newest record (``lead`` None, offline: the newest record
    in reach, which must be one lead's)."""
    heads = await buckets.record_heads(lead)
    if not heads:
        raise LedgerError(f"no aggregation record of {lead or 'any lead'} in reach")
    newest = [h for h in heads if h[0] == heads[0][0]]
    if len(newest) > 1:
        raise LedgerError(
            f"{len(newest)} leads recorded window {heads[0][0]}: choose one with --lead"
        )
    return heads[0]


async def _checkpoint_author(buckets: Buckets, window: int) -> str:
    authors = set()
    for store in buckets.everywhere:
        async for info in store.list(checkpoints_prefix()):
            parts = info.key.split("/")
            if parts[-1] == "manifest.json" and window_of_key(info.key) == window:
                authors.add(parts[-2])
    if len(authors) != 1:
        found = "no lead" if not authors else f"{len(authors)} leads"
        raise LedgerError(f"checkpoint of window {window}: {found} published one: use --lead")
    return authors.pop()


async def _lead_manifest(buckets: Buckets, lead: str, window: int) -> CheckpointManifest:
    raw = await buckets.get(lead, checkpoint_manifest_key(window, lead), MAX_MANIFEST_BYTES)
    if raw is None:
        raise LedgerError(f"checkpoint of window {window}: not in lead {lead}'s bucket")
    return open_manifest(raw, window, lead)


async def _fetch_model(buckets: Buckets, manifest: CheckpointManifest, path: Path) -> Path | None:
    entry = next((f for f in manifest.files if f.name == MODEL_FILE), None)
    if entry is None:
        return None
    key = checkpoint_file_key(manifest.window, manifest.hotkey, MODEL_FILE)
    for store in buckets.stores_for(manifest.hotkey):
        with contextlib.suppress(ObjectNotFound):
            await store.get_to_file(key, path, max_bytes=entry.size + 1)
            return path
    return None


@contextlib.contextmanager
def _mapped(path: Path | None) -> Iterator[memoryview | None]:
    """The file at ``path`` as a read-only buffer (memory-mapped: a model can be large)."""
    if path is None:
        yield None
        return
    with path.open("rb") as fh:
        if path.stat().st_size == 0:
            yield memoryview(b"")
            return
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            view = memoryview(mapped)
            try:
                yield view
            finally:
                view.release()


async def check_payloads(
    buckets: Buckets, chain: Sequence[StoredRecord], max_bytes: int
) -> PayloadCheck:
    """Each recorded payload still stored by its author, opened with its reveal, hashes to
    what its record names (:class:`LedgerError` naming the window otherwise)."""
    checked = not_retained = 0
    for found in chain:
        record = found.record
        for c in record.contributions:
            sealed_raw = await buckets.get(
                c.hotkey, contribution_key(record.window, c.hotkey), max_bytes
            )
            reveal_raw = await buckets.get(
                c.hotkey, reveal_key(record.window, c.hotkey), MAX_REVEAL_BYTES
            )
            if sealed_raw is None or reveal_raw is None:
                not_retained += 1
                continue
            what = (
                f"{record_name(record.window, record.hotkey)}: payload of uid {c.uid} ({c.hotkey})"
            )
            try:
                sealed = open_sealed(
                    sealed_raw, expected_hotkey=c.hotkey, expected_window=record.window,
                    expected_netuid=record.netuid, max_bytes=max_bytes,
                )  # fmt: skip
                key = open_reveal(
                    reveal_raw, expected_hotkey=c.hotkey, expected_window=record.window,
                    netuid=record.netuid,
                )  # fmt: skip
                digest = hashlib.sha256(unseal(sealed, key)).hexdigest()
            except ProtocolError as exc:
                raise LedgerError(f"{what}: {exc}") from None
            if digest != c.sha256:
                raise LedgerError(
                    f"{what}: payload hash mismatch: it hashes to {digest[:16]}..., the record "
                    f"names {c.sha256[:16]}..."
                )
            checked += 1
    return PayloadCheck(checked, not_retained)
