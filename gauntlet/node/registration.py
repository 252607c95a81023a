"""``gauntlet register``: put this node's hotkey on the subnet.

On the simulated chain the node registers itself, with a stake from the sim-only faucet
(a validator needs stake for its permit). On a Bittensor network registration is paid in
TAO by the coldkey, which a node never holds, so the command prints the exact btcli
(bittensor 11 CLI) commands to run where the coldkey lives.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from gauntlet.config.schema import ChainConfig, GauntletConfig, WalletConfig

DEFAULT_WALLET_PATH = WalletConfig.model_fields["path"].default


@dataclass(frozen=True)
class Registration:
    """Where a hotkey stands on the subnet after ``gauntlet register``."""

    uid: int
    hotkey: str
    stake: float
    validator_permit: bool

    def line(self, config: GauntletConfig) -> str:
        chain = config.chain
        permit = "yes" if self.validator_permit else "no"
        return (
            f"registered hotkey {self.hotkey} on netuid {chain.netuid} "
            f"(sim chain at {chain.endpoint}): uid {self.uid}, stake {self.stake:g}, "
            f"validator permit: {permit}"
        )


def btcli_network(chain: ChainConfig) -> str:
    """btcli's ``--network``: a network name, or the websocket endpoint of a local subtensor."""
    return chain.endpoint if chain.network == "local" else chain.network


def _wallet_flags(wallet: WalletConfig, *, hotkey: bool = True) -> list[str]:
    flags = ["--wallet", wallet.name, *(["--wallet-hotkey", wallet.hotkey] if hotkey else [])]
    if wallet.path != DEFAULT_WALLET_PATH:
        flags += ["--wallet-path", wallet.path]
    return flags


def btcli_commands(config: GauntletConfig, stake: float | None = None) -> list[str]:
    """The btcli commands that register this config's hotkey (and stake it, for a validator).

    Flag names are those of the bittensor 11 CLI (``--wallet``, ``--wallet-hotkey``,
    ``--wallet-path``), not the older bittensor-cli's ``--wallet.name``.
    """
    chain = config.chain
    wallet = _wallet_flags(config.wallet)
    network = ["--network", btcli_network(chain)]
    netuid = ["--netuid", str(chain.netuid)]
    commands = [["btcli", "subnets", "register", *netuid, *wallet, *network]]
    if stake:
        commands.append(
            ["btcli", "stake", "add", *netuid, "--amount", f"{stake:g}", *wallet, *network]
        )
    coldkey = _wallet_flags(config.wallet, hotkey=False)
    commands.append(["btcli", "wallet", "registrations", *netuid, *coldkey, *network])
    return [shlex.join(c) for c in commands]


def btcli_instructions(config: GauntletConfig, stake: float | None = None) -> str:
    """What ``gauntlet register`` prints on a Bittensor network."""
    lines = [
        f"netuid {config.chain.netuid} on {config.chain.network}: registration is paid by the "
        "coldkey, so run these where the coldkey is (bittensor 11 btcli):",
        *(f"  {c}" for c in btcli_commands(config, stake)),
    ]
    if not stake:
        lines.append("  (a validator also needs stake for a permit: add --stake TAO to see it)")
    return "\n".join(lines)


async def register_on_sim(config: GauntletConfig, stake: float | None = None) -> Registration:
    """Register the wallet's hotkey on the simulated chain (idempotent); ``stake`` sets its
    stake through the sim-only faucet, None leaves it as it is."""
    from gauntlet.chain.sim.client import SimChainClient
    from gauntlet.node.identity import coldkey_address_or_none, load_hotkey

    keypair = load_hotkey(config.wallet)
    coldkey = coldkey_address_or_none(config.wallet)
    client = SimChainClient(config.chain.endpoint, config.chain.netuid, keypair)
    try:
        uid = await client.register(stake=stake, coldkey=coldkey)
        neuron = (await client.metagraph()).by_uid(uid)
    finally:
        await client.close()
    assert neuron is not None  # just registered
    return Registration(uid, neuron.hotkey, neuron.stake, neuron.validator_permit)
