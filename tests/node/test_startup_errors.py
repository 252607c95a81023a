"""A node that cannot start says why in one line and exits 2, without a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gauntlet.chain.sim.process import spawn_sim_chain
from gauntlet.config import load_config
from gauntlet.node.identity import create_wallet
from gauntlet.node.runtime import StartupError, resolve_device
from gauntlet.storage.local_servers import free_port


def _miner(*flags: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAUNTLET_")}
    return subprocess.run(
        [sys.executable, "-m", "gauntlet.cli", "miner", *flags],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_missing_wallet_names_the_path_it_looked_at(tmp_path: Path) -> None:
    out = _miner("--wallet.path", str(tmp_path), "--wallet.name", "nobody")
    assert out.returncode == 2
    assert "cannot start" in out.stderr and str(tmp_path / "nobody") in out.stderr
    assert "Traceback" not in out.stderr


def test_unreachable_chain_is_a_clear_start_up_error(tmp_path: Path) -> None:
    create_wallet(tmp_path, "m")
    endpoint = f"http://127.0.0.1:{free_port()}"
    out = _miner("--wallet.path", str(tmp_path), "--wallet.name", "m", "--chain.endpoint", endpoint)
    assert out.returncode == 2
    assert "unreachable" in out.stderr and endpoint in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU, so none is missing")
def test_asking_for_a_gpu_without_one_is_a_start_up_error() -> None:
    config = load_config(overrides={"train": {"device": "cuda"}}, environ={})
    with pytest.raises(StartupError, match="no CUDA GPU"):
        resolve_device(config)


def test_a_corrupt_dataset_after_connecting_is_one_line_and_leaves_no_open_session(
    tmp_path: Path,
) -> None:
    """The dataset is loaded after the node has connected to the chain and its store: a
    failure there used to print a pydantic traceback followed by aiohttp's "Unclosed client
    session" (issue 16)."""
    chain = spawn_sim_chain(tmp_path / "chain.sqlite", tmp_path / "chain.url")
    try:
        create_wallet(tmp_path, "m")
        common = (
            "--chain.endpoint",
            chain.url,
            "--wallet.path",
            str(tmp_path),
            "--wallet.name",
            "m",
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("GAUNTLET_")}
        registered = subprocess.run(
            [sys.executable, "-m", "gauntlet.cli", "register", *common],
            capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip
        assert registered.returncode == 0, registered.stderr
        dataset = tmp_path / "dataset"
        dataset.mkdir()
        (dataset / "manifest.json").write_text('{"bad": 1}')
        out = _miner(
            *common, "--data.dataset_dir", str(dataset), "--node.state_dir", str(tmp_path / "state"),
            "--storage.root", str(tmp_path / "stores"),
        )  # fmt: skip
    finally:
        chain.stop()
    assert out.returncode == 2, out.stderr[-2000:]
    assert "cannot start" in out.stderr and "invalid manifest.json" in out.stderr
    assert "tokenizer: Field required" in out.stderr  # says what is wrong, in one line
    assert "Traceback" not in out.stderr and "Unclosed" not in out.stderr
