"""The README's hand-run path on the simulated chain, step by step as real processes:
chain serve, wallets, register, miner, validator, status. Each step's output is checked."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gauntlet.chain.sim.client import SimChainClient
from gauntlet.node.identity import create_wallet

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BTCLI = Path(sys.executable).parent / "btcli"
ENV = {k: v for k, v in os.environ.items() if not k.startswith("GAUNTLET_")}


def gauntlet(*argv: str) -> list[str]:
    return [sys.executable, "-m", "gauntlet.cli", *argv]


def run(argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, env=ENV, timeout=timeout)


class Processes:
    """Children started by this test, stopped by PID."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=ENV)
        self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)


@pytest.fixture
def processes() -> Iterator[Processes]:
    group = Processes()
    yield group
    group.stop_all()


def _wait_for(path: Path, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text().strip():
            return path.read_text().strip()
        assert proc.poll() is None, log.read_text()
        time.sleep(0.1)
    raise AssertionError(f"no {path}: {log.read_text()}")


def _make_wallets(wallets: Path) -> None:
    """README: `btcli wallet create` / `new-hotkey` (bittensor 11 flags)."""
    if not BTCLI.exists():  # the SDK's own key generation, same files
        create_wallet(wallets, "cold", "miner")
        create_wallet(wallets, "vali", "val")
        return
    common = ["--wallet-path", str(wallets)]
    made = run([str(BTCLI), "wallet", "create", "--wallet", "cold", "--wallet-hotkey", "miner",
                "--no-password", *common])  # fmt: skip
    assert made.returncode == 0 and "created wallet" in made.stdout, made.stdout + made.stderr
    made = run([str(BTCLI), "wallet", "create", "--wallet", "vali", "--wallet-hotkey", "val",
                "--no-password", *common])  # fmt: skip
    assert made.returncode == 0, made.stderr


async def _hyperparameters(url: str):
    client = SimChainClient(url, 1)
    try:
        return await client.hyperparameters()
    finally:
        await client.close()


def test_the_readme_path_from_chain_serve_to_status(
    tmp_path: Path, stdlib_dataset_dir: Path, processes: Processes
) -> None:
    # 1. gauntlet chain serve
    chain_log = tmp_path / "chain.log"
    ready = tmp_path / "chain.url"
    chain = processes.start(
        gauntlet("chain", "serve", "--block-time", "1", "--db", str(tmp_path / "chain.sqlite"),
                 "--port", "0", "--ready-file", str(ready)),
        chain_log,
    )  # fmt: skip
    url = _wait_for(ready, chain, chain_log)
    assert "simulated chain at " + url in chain_log.read_text()
    assert asyncio.run(_hyperparameters(url)).weights_rate_limit == 5  # under one window

    # 2. wallets, 3. gauntlet register (the validator with stake)
    wallets = tmp_path / "wallets"
    _make_wallets(wallets)
    chain_flags = ["--subtensor.network", "sim", "--chain.endpoint", url, "--netuid", "1"]
    miner_id = ["--wallet.path", str(wallets), "--wallet.name", "cold", "--wallet.hotkey", "miner"]
    vali_id = ["--wallet.path", str(wallets), "--wallet.name", "vali", "--wallet.hotkey", "val"]
    registered = run(gauntlet("register", *chain_flags, *miner_id))
    assert registered.returncode == 0, registered.stderr
    assert "uid 0, stake 0, validator permit: no" in registered.stdout
    registered = run(gauntlet("register", *chain_flags, *vali_id, "--stake", "1000"))
    assert registered.returncode == 0, registered.stderr
    assert "uid 1, stake 1000, validator permit: yes" in registered.stdout

    # 4. gauntlet miner and gauntlet validator
    node_flags = [
        *chain_flags, "--data.dataset_dir", str(stdlib_dataset_dir),
        "--storage.root", str(tmp_path / "stores"), "--node.state_dir", str(tmp_path / "state"),
        "--train.torch_threads", "1", "--train.inner_steps", "5", "--compress.topk", "256",
    ]  # fmt: skip
    miner_log, vali_log = tmp_path / "miner.log", tmp_path / "validator.log"
    miner = processes.start(
        gauntlet("miner", *node_flags, *miner_id, "--node.max_windows", "6"), miner_log
    )
    validator = processes.start(
        gauntlet("validator", *node_flags, *vali_id, "--node.max_windows", "3"), vali_log
    )
    assert validator.wait(timeout=400) == 0, vali_log.read_text()[-3000:]
    assert "stopped (finished)" in vali_log.read_text()
    assert miner.poll() is None or miner.returncode == 0, miner_log.read_text()[-3000:]
    assert "uploaded" in miner_log.read_text()

    # 5. gauntlet status --uid 0 --json
    status = run(gauntlet("status", "--uid", "0", "--json", "--windows", "3", *chain_flags,
                          "--storage.root", str(tmp_path / "stores")))  # fmt: skip
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["uid"] == 0 and len(data["windows"]) == 3 and data["notes"] == []
    rows = [r for r in data["rows"] if r["validator_uid"] == 1]
    assert rows and all(r["result"] is not None for r in rows), data
    assert {r["result"]["status"] for r in rows} <= {"ok", "missing", "late", "desynced", "outlier"}
    assert [w["validator_uid"] for w in data["chain_weights"]] == [1]
    text = run(
        gauntlet("status", "--uid", "0", *chain_flags, "--storage.root", str(tmp_path / "stores"))
    )
    assert text.returncode == 0 and "validators' window reports" in text.stdout
