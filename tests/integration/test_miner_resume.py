"""A miner killed with SIGKILL restarts with the error-feedback residual it had saved."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gauntlet.chain.sim.client import SimChainClient
from gauntlet.chain.sim.process import spawn_sim_chain
from gauntlet.compress.codec import param_shapes
from gauntlet.config import GauntletConfig
from gauntlet.model import build_model
from gauntlet.node.identity import coldkey_address, create_wallet
from gauntlet.node.miner_state import load_state, state_path

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _start_miner(config_path: Path, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAUNTLET_")}
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "gauntlet.cli", "miner", "--config", str(config_path)],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip


def _wait(predicate, what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_sigkilled_miner_resumes_its_error_feedback(
    tmp_path: Path, stdlib_dataset_dir: Path
) -> None:
    chain = spawn_sim_chain(
        tmp_path / "chain.sqlite", tmp_path / "chain.url", "--block-time", "0.3"
    )
    processes: list[subprocess.Popen] = []
    try:
        keypair = create_wallet(tmp_path / "wallets", "miner")

        async def register() -> None:
            client = SimChainClient(chain.url, 1, keypair)
            await client.register(coldkey=coldkey_address(tmp_path / "wallets", "miner"))
            await client.close()

        asyncio.run(register())
        config = GauntletConfig.model_validate(
            {
                "chain": {"endpoint": chain.url, "blocks_per_window": 10},
                "wallet": {"name": "miner", "path": str(tmp_path / "wallets")},
                "storage": {"root": str(tmp_path / "stores")},
                "data": {"dataset_dir": str(stdlib_dataset_dir)},
                "train": {"inner_steps": 4, "torch_threads": 1},
                "node": {"state_dir": str(tmp_path / "state")},
            }
        )
        config_path = tmp_path / "miner.json"
        config_path.write_text(json.dumps(config.model_dump()))
        state_file = state_path(tmp_path / "state", keypair.ss58_address)
        shapes = param_shapes(build_model("tiny", seed=0))
        log = tmp_path / "miner.log"

        processes.append(_start_miner(config_path, log))
        _wait(state_file.is_file, "the first saved state")
        _wait(
            lambda: load_state(state_file, model_name="tiny", shapes=shapes).window >= 1,
            "a second window",
        )
        processes[0].send_signal(signal.SIGKILL)
        processes[0].wait(timeout=10)

        saved = load_state(state_file, model_name="tiny", shapes=shapes)
        assert saved.window >= 1 and saved.error_feedback, "the residual was not saved"
        assert any(t.abs().sum() > 0 for t in saved.error_feedback.values())

        processes.append(_start_miner(config_path, log))
        _wait(lambda: "resumed miner state" in log.read_text(), "the restarted miner to resume")
        assert f"resumed miner state: window {saved.window}," in log.read_text()
        # The restarted miner carries the same residual into its next contribution.
        reloaded = load_state(state_file, model_name="tiny", shapes=shapes)
        if reloaded.window == saved.window:
            for name, tensor in saved.error_feedback.items():
                assert torch.equal(reloaded.error_feedback[name], tensor)
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=20)
        chain.stop()
