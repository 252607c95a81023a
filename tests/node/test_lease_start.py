"""Through the node's start on a simulated chain: the uploader lease lets the same node
restart at once, refuses a second node on the hotkey in one line before anything is
committed, lets the operator take over on purpose, and stops the node it replaced."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest

from gauntlet.chain.sim.client import SimChainClient
from gauntlet.chain.sim.process import spawn_sim_chain
from gauntlet.config import load_config
from gauntlet.node.identity import create_wallet
from gauntlet.node.lease import lease_key, read_lease
from gauntlet.node.runtime import LeaseLost, StartupError, open_runtime


def test_one_node_per_hotkey_across_state_directories(
    tmp_path: Path, stdlib_dataset_dir: Path
) -> None:
    chain = spawn_sim_chain(tmp_path / "chain.sqlite", tmp_path / "chain.url")
    wallets, root = tmp_path / "wallets", tmp_path / "stores"
    keypair = create_wallet(wallets, "miner")

    def config(state: str, **node: object):
        return load_config(
            overrides={
                "chain": {"endpoint": chain.url},
                "wallet": {"path": str(wallets), "name": "miner"},
                "storage": {"root": str(root), "bucket": "mine"},
                "data": {"dataset_dir": str(stdlib_dataset_dir)},
                "node": {"state_dir": str(tmp_path / state), **node},
            },
            environ={},
        )

    async def run() -> None:
        client = SimChainClient(chain.url, 1, keypair)
        try:
            await client.register()
        finally:
            await client.close()
        first = await open_runtime(config("state-a"), role="miner")
        # the same node again (same state directory) while its lease is fresh, as after a
        # SIGKILL that released nothing: accepted
        restarted = await open_runtime(config("state-a"), role="miner")
        try:
            with pytest.raises(StartupError) as refused:
                await open_runtime(config("state-b"))
            message = str(refused.value)
            assert f"miner on host {socket.gethostname()} (pid {os.getpid()})" in message
            assert "--node.take_over_lease true" in message
            second = await open_runtime(config("state-b", take_over_lease=True), role="miner")
            try:
                held = await read_lease(second.store, keypair.ss58_address)
                assert held is not None and held.instance != first.lease.instance  # type: ignore[union-attr]
                with pytest.raises(LeaseLost, match="another node took hotkey"):
                    await first.prune(0)
                with pytest.raises(LeaseLost):
                    await restarted.prune(0)
            finally:
                await second.close()
        finally:
            await restarted.close()
            await first.close()
        # a clean stop released the lease: nothing left to lapse
        assert not (root / "mine" / lease_key(keypair.ss58_address)).exists()

    try:
        asyncio.run(run())
    finally:
        chain.stop()
