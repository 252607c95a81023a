"""Build the configured ``Chain`` client: the simulated chain or a Bittensor network."""

from __future__ import annotations

from gauntlet.chain.base import Chain
from gauntlet.config.schema import ChainConfig
from protocol.signing import Signer


def build_chain(config: ChainConfig, keypair: Signer | None) -> Chain:
    """``sim`` talks to ``gauntlet chain serve`` at ``endpoint``; ``local`` to a subtensor at
    ``endpoint``; ``finney``/``test`` to those networks. The network is always explicit."""
    if config.network == "sim":
        from gauntlet.chain.sim.client import SimChainClient

        return SimChainClient(config.endpoint, config.netuid, keypair)
    from gauntlet.chain.bittensor_chain import BittensorChain

    network = config.endpoint if config.network == "local" else config.network
    return BittensorChain(network, config.netuid, keypair)  # type: ignore[arg-type]
