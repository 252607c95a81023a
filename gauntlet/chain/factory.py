"""Build the configured ``Chain`` client."""

from __future__ import annotations

from gauntlet.chain.base import Chain
from gauntlet.config.schema import ChainConfig
from protocol.signing import Signer


class UnsupportedNetwork(RuntimeError):
    pass


def build_chain(config: ChainConfig, keypair: Signer | None) -> Chain:
    if config.network == "sim":
        from gauntlet.chain.sim.client import SimChainClient

        return SimChainClient(config.endpoint, config.netuid, keypair)
    raise UnsupportedNetwork(
        f"chain.network={config.network!r}: the Bittensor adapter is not available in this build; "
        "use --subtensor.network sim with a simulated chain (`gauntlet chain serve`)"
    )
