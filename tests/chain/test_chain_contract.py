"""One contract for every ``Chain``: the simulated chain always, a real subtensor on request.

The same tests run against each backend. The simulated chain runs as a real OS process.
A local subtensor joins when ``GAUNTLET_TEST_SUBTENSOR=ws://host:port`` names one (see
docs/chain.md for the set-up it expects); otherwise that backend is skipped with the reason.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

from gauntlet.chain.base import Chain, NoValidatorPermit, RateLimited
from gauntlet.chain.bittensor_chain import BittensorChain
from gauntlet.chain.sim.client import SimChainClient
from gauntlet.chain.sim.process import SimChainProcess
from protocol.signing import Signer, keypair_from_uri

pytestmark = pytest.mark.integration
T = TypeVar("T")

SUBTENSOR = os.environ.get("GAUNTLET_TEST_SUBTENSOR", "")
SUBTENSOR_NETUID = int(os.environ.get("GAUNTLET_TEST_NETUID", "2"))
_netuids = itertools.count(40)


class Backend(ABC):
    """How a contract test gets ``Chain`` handles for keys on one subnet."""

    name: str
    # The simulated chain can set stake (a faucet) and shows weights at once (no commit-reveal).
    stake_faucet: bool
    weights_visible_at_once: bool

    def __init__(self, netuid: int) -> None:
        self.netuid = netuid
        self._open: list[Chain] = []

    @abstractmethod
    def _build(self, key: Signer) -> Chain: ...

    def key(self, role: str) -> Signer:
        """The key a test uses for ``role`` (validator, miner, ...)."""
        return keypair_from_uri(f"//contract/{self.netuid}/{role}")

    def chain(self, key: Signer) -> Chain:
        """A handle for ``key``; nothing is registered."""
        chain = self._build(key)
        self._open.append(chain)
        return chain

    async def join(self, key: Signer, *, stake: float = 0.0) -> Chain:
        """A handle for ``key``, registered on the subnet (with ``stake`` where possible)."""
        chain = self.chain(key)
        await chain.register()
        return chain

    async def close(self) -> None:
        for chain in self._open:
            await chain.close()


class SimBackend(Backend):
    name = "sim"
    stake_faucet = True
    weights_visible_at_once = True

    def __init__(self, netuid: int, url: str) -> None:
        super().__init__(netuid)
        self.url = url

    def _build(self, key: Signer) -> Chain:
        return SimChainClient(self.url, self.netuid, key)

    async def join(self, key: Signer, *, stake: float = 0.0) -> Chain:
        chain = self.chain(key)
        assert isinstance(chain, SimChainClient)
        await chain.register(stake=stake, coldkey=f"cold-{key.ss58_address}")
        return chain


class SubtensorBackend(Backend):
    """A running subtensor: dev keys (funded on a localnet) register by burning TAO.

    Stake cannot be conjured here, so the ``validator`` key is
    ``GAUNTLET_TEST_VALIDATOR_URI`` (default ``//Alice``), which the operator staked and
    which holds a permit on ``GAUNTLET_TEST_NETUID``; other roles are fresh dev keys.
    """

    name = "subtensor"
    stake_faucet = False
    weights_visible_at_once = False  # commit-reveal subnets reveal weights epochs later

    def key(self, role: str) -> Signer:
        if role == "validator":
            return keypair_from_uri(os.environ.get("GAUNTLET_TEST_VALIDATOR_URI", "//Alice"))
        return super().key(role)

    def _build(self, key: Signer) -> Chain:
        return BittensorChain(SUBTENSOR, self.netuid, _DevWallet(key))


class _DevWallet:
    """A wallet-shaped dev key: the same keypair as coldkey and hotkey (localnet only)."""

    def __init__(self, key: Any) -> None:
        self.coldkey = self.coldkeypub = self.hotkey = key


@pytest.fixture(params=["sim", "subtensor"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "sim":
        sim: SimChainProcess = request.getfixturevalue("sim_chain")
        yield SimBackend(next(_netuids), sim.url)
    else:
        if not SUBTENSOR:
            pytest.skip("GAUNTLET_TEST_SUBTENSOR=ws://... names no local subtensor")
        yield SubtensorBackend(SUBTENSOR_NETUID)


def run(backend: Backend, body: Callable[[Backend], Awaitable[T]]) -> T:
    async def main() -> T:
        try:
            return await body(backend)
        finally:
            await backend.close()

    return asyncio.run(main())


async def _set_weights_after_rate_limit(chain: Chain, uids: list[int], w: list[float]) -> None:
    """Set weights, first waiting out a rate limit left by an earlier test on a real chain."""
    try:
        await chain.set_weights(uids, w)
    except RateLimited:
        limit = (await chain.hyperparameters()).weights_rate_limit
        await chain.wait_for_block(await chain.current_block() + limit)
        await chain.set_weights(uids, w)


# ---- the contract -------------------------------------------------------------------------


def test_blocks_advance(backend: Backend) -> None:
    async def body(b: Backend) -> None:
        chain = b.chain(b.key("reader"))
        start = await chain.current_block()
        reached = await chain.wait_for_block(start + 2)
        assert reached >= start + 2
        assert await chain.current_block() >= reached

    run(backend, body)


def test_block_timestamps_increase_with_the_block(backend: Backend) -> None:
    async def body(b: Backend) -> None:
        chain = b.chain(b.key("reader"))
        head = await chain.wait_for_block(3)
        blocks = [head - 2, head - 1, head, head + 1, head + 5]
        stamps = [await chain.block_timestamp(block) for block in blocks]
        assert stamps == sorted(stamps) and stamps[-1] > stamps[2]
        step = await chain.block_time()
        assert stamps[-1] - stamps[2] == pytest.approx(5 * step, rel=0.5)

    run(backend, body)


def test_registration_shows_in_the_metagraph_with_its_hotkey(backend: Backend) -> None:
    async def body(b: Backend) -> None:
        key = b.key("newcomer")
        chain = b.chain(key)
        uid = await chain.register()
        assert await chain.register() == uid  # registering again finds the same uid
        neuron = (await chain.metagraph()).by_uid(uid)
        assert neuron is not None and neuron.hotkey == key.ss58_address

    run(backend, body)


def test_a_commitment_reads_back(backend: Backend) -> None:
    async def body(b: Backend) -> None:
        key = b.key("miner")
        chain = await b.join(key)
        data = f'{{"bucket":"contract-{b.netuid}","kind":"fs","root":"/tmp/x","v":1}}'
        await chain.commit(data)
        assert (await chain.commitments())[key.ss58_address] == data

    run(backend, body)


def test_weights_by_a_permitted_validator_reach_the_metagraph(backend: Backend) -> None:
    async def body(b: Backend) -> None:
        validator = await b.join(b.key("validator"), stake=10.0)
        miner_uid = await (await b.join(b.key("miner"))).register()
        await _set_weights_after_rate_limit(validator, [miner_uid], [1.0])
        if not b.weights_visible_at_once:
            return  # accepted is all a commit-reveal chain promises now
        graph = await validator.metagraph()
        me = graph.by_hotkey(b.key("validator").ss58_address)
        assert me is not None and me.validator_permit
        assert graph.weights[me.uid] == {miner_uid: pytest.approx(1.0)}

    run(backend, body)


def test_weights_by_a_miner_without_permit_are_refused(backend: Backend) -> None:
    async def body(b: Backend) -> None:
        await b.join(b.key("validator"), stake=10.0)
        miner = await b.join(b.key("miner"))
        me = (await miner.metagraph()).by_hotkey(b.key("miner").ss58_address)
        assert me is not None
        if me.validator_permit:
            pytest.skip("on this chain every neuron of a small subnet holds a permit")
        with pytest.raises(NoValidatorPermit):
            await miner.set_weights([me.uid], [1.0])

    run(backend, body)


def test_weights_set_too_often_are_rate_limited(backend: Backend) -> None:
    async def body(b: Backend) -> None:
        validator = await b.join(b.key("validator"), stake=10.0)
        miner_uid = await (await b.join(b.key("miner"))).register()
        if (await validator.hyperparameters()).weights_rate_limit < 2:
            pytest.skip("this subnet has no weights rate limit to hit")
        await _set_weights_after_rate_limit(validator, [miner_uid], [1.0])
        with pytest.raises(RateLimited):
            await validator.set_weights([miner_uid], [1.0])

    run(backend, body)


def test_an_epoch_pays_miners_in_stake_weighted_consensus_order(backend: Backend) -> None:
    """A big and a small validator disagree; consensus (and incentive) follows the big one."""

    async def body(b: Backend) -> None:
        if not b.stake_faucet:
            pytest.skip(f"{b.name} cannot give test validators chosen stake")
        big = await b.join(b.key("big"), stake=3.0)
        small = await b.join(b.key("small"), stake=1.0)
        m1 = await (await b.join(b.key("m1"))).register()
        m2 = await (await b.join(b.key("m2"))).register()
        await big.set_weights([m1, m2], [0.7, 0.3])
        await small.set_weights([m1, m2], [0.2, 0.8])
        tempo = (await big.hyperparameters()).tempo
        await big.wait_for_block(await big.current_block() + tempo + 1)

        graph = await big.metagraph()
        incentive = {n.uid: n.incentive for n in graph.neurons}
        assert incentive[m1] > incentive[m2] > 0
        dividends = {n.hotkey: n.dividends for n in graph.neurons}
        assert dividends[b.key("big").ss58_address] > dividends[b.key("small").ss58_address]

    run(backend, body)
