"""A node moving to a new bucket carries the records, peer sets and checkpoints nodes rebuild
the model from, so the network's model never resets to the initial weights (issue 16)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
import torch

from gauntlet.model import build_model
from gauntlet.node.bucket_move import carry_over, move_bucket
from gauntlet.node.checkpoints import checkpoint_windows, load_checkpoint, save_checkpoint
from gauntlet.storage.filesystem import FilesystemStore
from protocol.keys import (
    aggregation_record_key,
    contribution_key,
    peer_set_key,
    window_report_key,
)
from protocol.signing import keypair_from_uri

LEAD = keypair_from_uri("//lead")


async def _old_bucket(store: FilesystemStore, model: torch.nn.Module) -> None:
    for window in (7, 8):
        await store.put(aggregation_record_key(window, LEAD.ss58_address), b"record %d" % window)
        await store.put(peer_set_key(window, LEAD.ss58_address), b"set %d" % window)
        await store.put(window_report_key(window, LEAD.ss58_address), b"report")
        await store.put(contribution_key(window, LEAD.ss58_address), b"upload")
    await save_checkpoint(store, LEAD, model, netuid=1, window=8, model_name="tiny",
                          dataset_id="d")  # fmt: skip


def test_the_new_bucket_gets_what_nodes_rebuild_from_and_nothing_else(tmp_path: Path) -> None:
    old, new = FilesystemStore(tmp_path, "old"), FilesystemStore(tmp_path, "new")
    trained = build_model("tiny", 3)

    async def run() -> tuple[int, int, torch.nn.Module]:
        await _old_bucket(old, trained)
        copied = await carry_over(old, new)
        again = await carry_over(old, new)  # an interrupted move resumes; nothing twice
        fresh = build_model("tiny", 0)
        assert await checkpoint_windows(new, LEAD.ss58_address) == [8]
        await load_checkpoint(new, LEAD.ss58_address, 8, fresh, netuid=1, model_name="tiny",
                              dataset_id="d")  # fmt: skip
        return copied, again, fresh

    copied, again, restored = asyncio.run(run())
    assert copied == 2 + 2 + 2 and again == 0  # 2 records, 2 peer sets, manifest and model file
    for (name, a), (_, b) in zip(
        trained.named_parameters(), restored.named_parameters(), strict=True
    ):
        torch.testing.assert_close(a, b, msg=name)  # the trained model, not the initial one
    assert (new.base / aggregation_record_key(8, LEAD.ss58_address)).read_bytes() == b"record 8"
    assert not (new.base / window_report_key(7, LEAD.ss58_address)).exists()
    assert not (new.base / contribution_key(7, LEAD.ss58_address)).exists()


def test_an_old_bucket_that_cannot_be_opened_is_said_and_does_not_stop_the_node(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    new = FilesystemStore(tmp_path, "new")
    with caplog.at_level(logging.WARNING, logger="gauntlet.node.bucket_move"):
        asyncio.run(move_bucket(None, new, "bucket gone at https://s3.example"))
    assert "cannot be opened: nothing carried over" in caplog.text


def test_a_validator_restarted_on_a_new_bucket_brings_its_checkpoints_before_committing(
    tmp_path: Path, stdlib_dataset_dir: Path
) -> None:
    """Through the node's start: the first start commits bucket A; the lead's artifacts are
    stored there; a start with bucket B carries them into B before B is committed."""
    from gauntlet.chain.sim.client import SimChainClient
    from gauntlet.chain.sim.process import spawn_sim_chain
    from gauntlet.config import load_config
    from gauntlet.node.identity import create_wallet
    from gauntlet.node.runtime import open_runtime

    chain = spawn_sim_chain(tmp_path / "chain.sqlite", tmp_path / "chain.url")
    wallets, root = tmp_path / "wallets", tmp_path / "stores"
    keypair = create_wallet(wallets, "vali")

    def config(bucket: str):
        return load_config(
            overrides={
                "chain": {"endpoint": chain.url},
                "wallet": {"path": str(wallets), "name": "vali"},
                "storage": {"root": str(root), "bucket": bucket},
                "data": {"dataset_dir": str(stdlib_dataset_dir)},
                "node": {"state_dir": str(tmp_path / "state")},
            },
            environ={},
        )

    async def run() -> list[int]:
        client = SimChainClient(chain.url, 1, keypair)
        try:
            await client.register(stake=1000)
        finally:
            await client.close()
        first = await open_runtime(config("bucket-a"))
        await save_checkpoint(first.store, keypair, first.model, netuid=1, window=4,
                              model_name="tiny", dataset_id=first.dataset.dataset_id)  # fmt: skip
        await first.close()
        second = await open_runtime(config("bucket-b"))
        try:
            return await checkpoint_windows(second.store, keypair.ss58_address)
        finally:
            await second.close()

    try:
        assert asyncio.run(run()) == [4]
    finally:
        chain.stop()
