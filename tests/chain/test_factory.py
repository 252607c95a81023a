"""The configured network picks the chain client; nothing defaults to finney silently."""

from __future__ import annotations

import pytest

from gauntlet.chain.bittensor_chain import BittensorChain
from gauntlet.chain.factory import build_chain
from gauntlet.chain.sim.client import SimChainClient
from gauntlet.config.schema import ChainConfig


def test_sim_network_builds_the_simulated_chain_client() -> None:
    chain = build_chain(ChainConfig(network="sim", endpoint="http://127.0.0.1:1", netuid=3), None)
    assert isinstance(chain, SimChainClient) and chain.netuid == 3


@pytest.mark.parametrize("network", ["finney", "test"])
def test_bittensor_networks_build_the_adapter_for_that_network(network: str) -> None:
    chain = build_chain(ChainConfig(network=network, netuid=2), None)  # type: ignore[arg-type]
    assert isinstance(chain, BittensorChain) and chain.netuid == 2
    assert chain.network == network


def test_local_network_uses_the_configured_endpoint() -> None:
    chain = build_chain(
        ChainConfig(network="local", endpoint="ws://127.0.0.1:9944", netuid=1), None
    )
    assert isinstance(chain, BittensorChain) and chain.network == "ws://127.0.0.1:9944"
