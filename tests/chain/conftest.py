"""Shared fixtures for the chain tests: the simulated chain as a real OS process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gauntlet.chain.sim.process import SimChainProcess, spawn_sim_chain

StartSimChain = Callable[..., SimChainProcess]


@pytest.fixture
def start_sim_chain(tmp_path: Path) -> Iterator[StartSimChain]:
    """``start(db_path, *flags)`` runs a service on a free port; every one started is stopped."""
    started: list[SimChainProcess] = []

    def start(db_path: Path, *flags: str) -> SimChainProcess:
        chain = spawn_sim_chain(db_path, tmp_path / f"chain-{len(started)}.url", *flags)
        started.append(chain)
        return chain

    yield start
    for chain in started:
        chain.stop()


# Short blocks and a short tempo so an epoch passes within a test; a rate limit long enough
# (2 s) that a second set_weights inside one test is reliably refused.
FAST_CHAIN_FLAGS = ("--block-time", "0.2", "--tempo", "5", "--weights-rate-limit", "10")


@pytest.fixture(scope="module")
def sim_chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimChainProcess]:
    """One service shared by a module's tests (each test uses its own netuid and keys)."""
    tmp = tmp_path_factory.mktemp("sim_chain")
    chain = spawn_sim_chain(tmp / "chain.sqlite", tmp / "chain.url", *FAST_CHAIN_FLAGS)
    yield chain
    chain.stop()
