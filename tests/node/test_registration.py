"""``gauntlet register``: the sim chain registers the hotkey; Bittensor networks get btcli 11 commands."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from gauntlet.chain.sim.process import SimChainProcess, spawn_sim_chain
from gauntlet.config import load_config
from gauntlet.node.identity import create_wallet
from gauntlet.node.registration import btcli_commands

BTCLI = Path(sys.executable).parent / "btcli"


def _gauntlet(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAUNTLET_")}
    return subprocess.run(
        [sys.executable, "-m", "gauntlet.cli", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.fixture
def chain(tmp_path: Path) -> SimChainProcess:
    process = spawn_sim_chain(tmp_path / "chain.sqlite", tmp_path / "chain.url")
    yield process  # type: ignore[misc]
    process.stop()


def _finney(**wallet: str):
    return load_config(
        overrides={"chain": {"network": "finney", "netuid": 7}, "wallet": wallet}, environ={}
    )


def test_btcli_commands_use_the_bittensor_11_flag_names() -> None:
    commands = btcli_commands(_finney(name="cold", hotkey="val"), stake=250)
    assert commands[0] == (
        "btcli subnets register --netuid 7 --wallet cold --wallet-hotkey val --network finney"
    )
    assert (
        "btcli stake add --netuid 7 --amount 250 --wallet cold --wallet-hotkey val" in commands[1]
    )
    assert not any("--wallet.name" in c or "--wallet.hotkey" in c for c in commands)


def test_a_local_subtensor_is_named_by_its_endpoint_and_a_custom_wallet_path_is_passed() -> None:
    config = load_config(
        overrides={
            "chain": {"network": "local", "endpoint": "ws://10.0.0.5:9944"},
            "wallet": {"path": "/keys"},
        },
        environ={},
    )
    (register, _) = btcli_commands(config)
    assert register.endswith("--wallet-path /keys --network ws://10.0.0.5:9944")


@pytest.mark.skipif(not BTCLI.exists(), reason="btcli is not installed next to this Python")
def test_every_printed_btcli_command_parses_with_the_installed_btcli(
    btcli_help: Callable[[list[list[str]]], list],
) -> None:
    commands = btcli_commands(_finney(name="cold", hotkey="miner1", path="/w"), stake=10)
    parsed = btcli_help([shlex.split(command)[1:] for command in commands])
    for command, (code, output) in zip(commands, parsed, strict=True):
        assert code == 0, f"{command}: {output}"
    assert btcli_help([["subnets", "register", "--no-such-flag"]])[0][0] != 0  # it can fail


def test_register_on_a_bittensor_network_prints_the_commands_and_registers_nothing() -> None:
    out = _gauntlet("register", "--subtensor.network", "test", "--netuid", "3", "--stake", "5")
    assert out.returncode == 0, out.stderr
    assert (
        "btcli subnets register --netuid 3 --wallet default --wallet-hotkey default" in out.stdout
    )
    assert "btcli stake add --netuid 3 --amount 5" in out.stdout


def test_register_on_the_sim_chain_gives_a_uid_and_stake_gives_a_permit(
    tmp_path: Path, chain: SimChainProcess
) -> None:
    create_wallet(tmp_path, "cold", "miner")
    create_wallet(tmp_path, "vali", "val")
    common = (
        "--subtensor.network",
        "sim",
        "--chain.endpoint",
        chain.url,
        "--wallet.path",
        str(tmp_path),
    )
    miner = _gauntlet("register", *common, "--wallet.name", "cold", "--wallet.hotkey", "miner")
    validator = _gauntlet(
        "register", *common, "--wallet.name", "vali", "--wallet.hotkey", "val", "--stake", "1000"
    )
    again = _gauntlet("register", *common, "--wallet.name", "cold", "--wallet.hotkey", "miner")
    assert miner.returncode == validator.returncode == again.returncode == 0
    assert "uid 0, stake 0, validator permit: no" in miner.stdout
    assert "uid 1, stake 1000, validator permit: yes" in validator.stdout
    assert "uid 0," in again.stdout  # registering twice keeps the uid


def test_register_without_a_hotkey_says_how_to_create_one(
    tmp_path: Path, chain: SimChainProcess
) -> None:
    out = _gauntlet(
        "register",
        "--chain.endpoint",
        chain.url,
        "--wallet.path",
        str(tmp_path),
        "--wallet.name",
        "nobody",
    )
    assert out.returncode == 1
    assert "btcli wallet create --wallet nobody --wallet-hotkey default" in out.stderr
    assert "Traceback" not in out.stderr
