"""The simulated chain service as a real OS process, used through ``SimChainClient``."""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest

from gauntlet.chain.base import (
    ChainUnavailable,
    NoValidatorPermit,
    RateLimited,
    Unauthorized,
)
from gauntlet.chain.sim.client import SimChainClient
from gauntlet.chain.sim.process import SimChainProcess
from gauntlet.chain.sim.status import render_status
from gauntlet.chain.sim.wire import seal
from protocol.signing import keypair_from_uri

pytestmark = pytest.mark.integration

# Tests share one service (the module-scoped ``sim_chain``), so each uses its own netuid.
NET = 7
FLAGS = ("--block-time", "0.2", "--tempo", "5", "--weights-rate-limit", "10")
ALICE, BOB, CHARLIE = (keypair_from_uri(u) for u in ("//Alice", "//Bob", "//Charlie"))
T = TypeVar("T")


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


_netuids = itertools.count(10)


@pytest.fixture
def chain(sim_chain: SimChainProcess) -> SimChainProcess:
    return sim_chain


@pytest.fixture
def netuid() -> int:
    """A subnet no other test on the shared service touches."""
    return next(_netuids)


async def _post_raw(url: str, path: str, envelope: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.post(url + path, json=envelope) as resp:
        return resp.status, await resp.json()


def test_register_commit_and_read_back(chain: SimChainProcess, netuid: int) -> None:
    async def scenario() -> None:
        alice = SimChainClient(chain.url, netuid, ALICE)
        bob = SimChainClient(chain.url, netuid, BOB)
        try:
            assert await alice.register() == 0
            assert await bob.register() == 1
            assert await alice.register() == 0
            await alice.commit('{"kind":"fs","bucket":"a"}')
            await bob.commit("old")
            await bob.commit("new")
            assert await alice.commitments() == {
                ALICE.ss58_address: '{"kind":"fs","bucket":"a"}',
                BOB.ss58_address: "new",
            }
            kinds = [e["kind"] for e in await alice.events()]
            assert kinds[:2] == ["register", "register"]
        finally:
            await alice.close()
            await bob.close()

    run(scenario())


def test_weights_round_trip_through_the_metagraph(chain: SimChainProcess, netuid: int) -> None:
    async def scenario() -> None:
        validator = SimChainClient(chain.url, netuid, ALICE)
        miner = SimChainClient(chain.url, netuid, BOB)
        try:
            assert await validator.register(stake=100.0) == 0
            assert await miner.register() == 1
            with pytest.raises(NoValidatorPermit):
                await miner.set_weights([1], [1.0])
            await validator.set_weights([0, 1], [1.0, 3.0])
            mg = await miner.metagraph()
            assert mg.weights[0][1] == pytest.approx(0.75, abs=1e-4)
            assert mg.by_uid(0).validator_permit  # type: ignore[union-attr]
            with pytest.raises(RateLimited):
                await validator.set_weights([1], [1.0])
            # One tempo later the epoch has paid the miner the validator weighted most.
            hp = await miner.hyperparameters()
            await miner.wait_for_block(mg.block + hp.tempo + 1)
            after = await miner.metagraph()
            assert after.by_uid(1).incentive > after.by_uid(0).incentive  # type: ignore[union-attr]
            assert "incentive" in await render_status(chain.url, netuid)
        finally:
            await validator.close()
            await miner.close()

    run(scenario())


def test_block_clock_and_timestamps(chain: SimChainProcess, netuid: int) -> None:
    async def scenario() -> None:
        client = SimChainClient(chain.url, netuid)
        try:
            assert await client.block_time() == pytest.approx(0.2)
            first = await client.current_block()
            seen = await client.wait_for_block(first + 2)
            assert seen >= first + 2
            t0, t1 = await client.block_timestamp(10), await client.block_timestamp(11)
            assert t1 - t0 == pytest.approx(0.2)
        finally:
            await client.close()

    run(scenario())


def test_a_signature_by_another_key_is_unauthorized(chain: SimChainProcess, netuid: int) -> None:
    forged = seal(BOB, "/register", 1, {"netuid": netuid})
    forged["hotkey"] = ALICE.ss58_address  # Bob signs, claiming to be Alice
    status, body = run(_post_raw(chain.url, "/register", forged))
    assert (status, body["error"]) == (401, Unauthorized.reason)


def test_a_signature_for_another_route_is_unauthorized(chain: SimChainProcess, netuid: int) -> None:
    envelope = seal(ALICE, "/commit", 1, {"netuid": netuid})
    status, body = run(_post_raw(chain.url, "/register", envelope))
    assert (status, body["error"]) == (401, Unauthorized.reason)


def test_a_replayed_request_is_unauthorized(chain: SimChainProcess, netuid: int) -> None:
    envelope = seal(CHARLIE, "/register", 42, {"netuid": netuid})
    assert run(_post_raw(chain.url, "/register", envelope))[0] == 200
    status, body = run(_post_raw(chain.url, "/register", envelope))
    assert (status, body["error"]) == (401, Unauthorized.reason)


def test_a_client_without_a_keypair_cannot_write(chain: SimChainProcess, netuid: int) -> None:
    async def scenario() -> None:
        client = SimChainClient(chain.url, netuid)
        try:
            with pytest.raises(Unauthorized):
                await client.register()
        finally:
            await client.close()

    run(scenario())


def test_oversized_bodies_are_refused(chain: SimChainProcess, netuid: int) -> None:
    envelope = seal(ALICE, "/commit", 1, {"netuid": netuid, "data": "x" * 70_000})
    status, body = run(_post_raw(chain.url, "/commit", envelope))
    assert (status, body["error"]) == (413, "bad_request")


def test_restart_on_the_same_db_keeps_the_chain(
    start_sim_chain: Callable[..., SimChainProcess], tmp_path: Path
) -> None:
    db = tmp_path / "chain.sqlite"
    first = start_sim_chain(db, *FLAGS)

    async def before() -> tuple[float, int]:
        client = SimChainClient(first.url, NET, ALICE)
        try:
            await client.register(stake=5.0)
            await client.commit("bucket")
            await client.set_weights([0], [1.0])
            return await client.block_timestamp(0), await client.current_block()
        finally:
            await client.close()

    genesis, block = run(before())
    assert first.stop() == 0, "SIGTERM must stop the service cleanly"
    second = start_sim_chain(db, "--block-time", "3.0")  # stored block time wins

    async def after() -> None:
        client = SimChainClient(second.url, NET, ALICE)
        try:
            assert await client.block_timestamp(0) == genesis
            assert await client.block_time() == pytest.approx(0.2)
            assert await client.current_block() >= block
            mg = await client.metagraph()
            assert mg.by_hotkey(ALICE.ss58_address).stake == 5.0  # type: ignore[union-attr]
            assert mg.weights == {0: {0: 1.0}}
            assert await client.commitments() == {ALICE.ss58_address: "bucket"}
            assert await client.register() == 0
        finally:
            await client.close()

    run(after())
    second.stop()
    log = (tmp_path / "chain-1.log").read_text()
    assert "already holds a chain with 0.2s blocks: --block-time 3 is ignored" in log


def test_an_unreachable_service_raises_chain_unavailable() -> None:
    with socket.socket() as s:  # a port nobody listens on once this closes
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def scenario() -> None:
        client = SimChainClient(f"http://127.0.0.1:{port}", NET, retries=2, backoff=0.01)
        try:
            with pytest.raises(ChainUnavailable):
                await client.current_block()
        finally:
            await client.close()

    run(scenario())
