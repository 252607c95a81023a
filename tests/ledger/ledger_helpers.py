"""A ledger built for tests: signed records in real filesystem buckets, across a lead change,
and a real checkpoint of a real (tiny) model that the records lead to."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import torch

from gauntlet.ledger.digest import model_sha256, model_sha256_after
from gauntlet.ledger.fetch import Buckets
from gauntlet.model import build_model
from gauntlet.node.checkpoints import save_checkpoint
from gauntlet.storage.filesystem import FilesystemStore
from gauntlet.train.outer import apply_delta
from protocol.envelope import seal
from protocol.keys import aggregation_record_key
from protocol.ledger import link_to
from protocol.schemas import AggregatedContribution, AggregationRecord, RecordLink
from protocol.signing import Signer, keypair_from_uri

NETUID = 1
LEAD_A = keypair_from_uri("//leadA")
LEAD_B = keypair_from_uri("//leadB")
MINERS = [keypair_from_uri(f"//ledger-miner/{uid}").ss58_address for uid in range(4)]
LR = 1.0


def contribution(uid: int, share: float) -> AggregatedContribution:
    return AggregatedContribution(
        uid=uid, hotkey=MINERS[uid], sha256=f"{uid + 1:064x}", share=share
    )


@dataclass
class LedgerRun:
    """Records of windows 0..5: lead A signs 0, 1 (empty) and 2; window 3 has no record;
    lead B, elected after, signs 4 and 5 (linked to A's record of 2). A checkpoint of
    window 3 (by A) and of window 5 (by B). Validation losses fall, except in window 4."""

    root: Path
    model: torch.nn.Module = field(default_factory=lambda: build_model("tiny", seed=3))
    stores: dict[str, FilesystemStore] = field(default_factory=dict)
    links: dict[int, RecordLink] = field(default_factory=dict)
    records: dict[int, AggregationRecord] = field(default_factory=dict)
    head: RecordLink | None = None

    PLAN = {  # window: (lead, contributions, validation loss of θ_window)
        0: (LEAD_A, [(0, 0.5), (1, 0.5)], 5.0),
        1: (LEAD_A, [], 4.0),
        2: (LEAD_A, [(0, 0.25), (1, 0.25), (2, 0.5)], 4.1),
        4: (LEAD_B, [(2, 0.6), (3, 0.4)], 3.0),
        5: (LEAD_B, [(0, 1.0)], 3.5),
    }

    def store(self, signer: Signer) -> FilesystemStore:
        hotkey = signer.ss58_address
        if hotkey not in self.stores:
            self.stores[hotkey] = FilesystemStore(self.root, f"bucket-{hotkey[:8]}")
        return self.stores[hotkey]

    def buckets(self) -> Buckets:
        return Buckets(dict(self.stores))

    def build(self) -> LedgerRun:
        for window in range(6):
            if window in self.PLAN:
                self.add(window)
            if window == 2:
                self.checkpoint(LEAD_A, 3)  # θ_3 = θ_4: window 3 has no record
            if window == 4:
                self.checkpoint(LEAD_B, 5)
        return self

    def add(self, window: int) -> None:
        lead, used, loss = self.PLAN[window]
        delta = {
            n: torch.full_like(p, 1e-3 * (window + 1)) for n, p in self.model.named_parameters()
        }
        update = delta if used else None
        record = AggregationRecord(
            netuid=NETUID, window=window, hotkey=lead.ss58_address, peer_set_window=0,
            contributions=[contribution(uid, share) for uid, share in used],
            fingerprint=[0.0], previous=self.head,
            model_sha256=model_sha256_after(self.model, update, LR), validation_loss=loss,
        )  # fmt: skip
        self.put_record(lead, record)
        if update is not None:
            apply_delta(self.model, update, LR)

    def put_record(
        self, lead: Signer, record: AggregationRecord, raw: bytes | None = None
    ) -> bytes:
        raw = seal(record, lead) if raw is None else raw
        key = aggregation_record_key(record.window, record.hotkey)
        asyncio.run(self.store(lead).put(key, raw))
        self.head = self.links[record.window] = link_to(record.window, record.hotkey, raw)
        self.records[record.window] = record
        return raw

    def checkpoint(self, lead: Signer, window: int) -> None:
        asyncio.run(
            save_checkpoint(
                self.store(lead), lead, self.model, netuid=NETUID, window=window,
                model_name="tiny", dataset_id="d0", ledger_head=self.head,
            )
        )  # fmt: skip

    def path(self, signer: Signer, key: str) -> Path:
        return self.store(signer).base / key

    def current_digest(self) -> str:
        return model_sha256(self.model)
