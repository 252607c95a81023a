"""``BittensorChain`` through the SDK's real code path, with only the RPC transport faked.

``FakeSubstrate`` implements the SDK's ``bt.Substrate`` seam (what ``bt.Client(substrate=...)``
accepts) over plain decoded values. Everything above it is the real SDK: the ``SetWeights``
preflight and u16 quantisation, the executor, the typed metagraph and commitment decoders.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import bittensor as bt
import pytest

from gauntlet.chain.base import (
    ChainError,
    ChainUnavailable,
    InvalidWeights,
    NotRegistered,
    NoValidatorPermit,
    RateLimited,
)
from gauntlet.chain.bittensor_chain import BittensorChain, commitment_info
from protocol.signing import keypair_from_uri

T = TypeVar("T")
NETUID = 3
VALIDATOR, MINER = keypair_from_uri("//Alice"), keypair_from_uri("//Bob")
ENDPOINT = "ws://fake-subtensor:9944"


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


class FakeSubstrate:
    """An in-memory ``bt.Substrate``: storage as decoded values; every write is recorded.

    ``outages`` makes the next N reads fail as a dropped websocket would;
    ``dispatch_error`` makes the next submission fail on chain with that error name.
    """

    def __init__(self, *, block: int = 1000, block_time: float = 12.0) -> None:
        self.token_symbols: dict[int, str] = {}
        self.head = block
        self._block_time = block_time
        self.storage: dict[tuple[str, str, tuple[Any, ...]], Any] = {}
        self.maps: dict[tuple[str, str, tuple[Any, ...]], list[tuple[Any, Any]]] = {}
        self.runtime: dict[tuple[str, str], Callable[..., Any]] = {}
        self.constants: dict[tuple[str, str], Any] = {("Commitments", "MaxFields"): 3}
        self.composed: list[bt.calls.Call] = []
        self.submitted: list[tuple[bt.calls.Call, str]] = []
        self.outages = 0
        self.submit_outage = False
        self.dispatch_error: str | None = None
        self.connects = 0

    # -- state helpers --
    def set(self, module: str, name: str, params: list[Any], value: Any) -> None:
        self.storage[(module, name, tuple(params))] = value

    def _transport(self) -> None:
        if self.outages:
            self.outages -= 1
            raise bt.RpcConnectionError("websocket closed: connection reset by peer")

    # -- lifecycle --
    def balance(self, rao: int, netuid: int = 0) -> bt.Balance:
        return bt.Balance(int(rao), netuid)

    async def connect(self) -> None:
        self.connects += 1

    async def close(self) -> None:
        pass

    # -- reads --
    async def block_hash(self, block: int | None = None) -> str:
        self._transport()
        return f"0x{self.head if block is None else block:064x}"

    async def block_number(self) -> int:
        self._transport()
        return self.head

    async def finalized_block_number(self) -> int:
        return self.head

    async def block_time(self) -> float:
        return self._block_time

    async def spec_version(self) -> int:
        return 1

    async def query(
        self, module: str, name: str, params: list[Any] | None = None, block_hash: Any = None
    ) -> Any:
        self._transport()
        return self.storage.get((module, name, tuple(params or [])))

    async def query_map(
        self, module: str, name: str, params: list[Any] | None = None, block_hash: Any = None
    ) -> list[tuple[Any, Any]]:
        self._transport()
        return list(self.maps.get((module, name, tuple(params or [])), []))

    async def query_batch(
        self, module: str, name: str, param_sets: list[list[Any]], block_hash: Any = None
    ) -> list[Any]:
        return [await self.query(module, name, p, block_hash) for p in param_sets]

    async def runtime_call(
        self, api: str, method: str, params: list[Any], block_hash: Any = None
    ) -> Any:
        self._transport()
        return self.runtime[(api, method)](*params)

    async def constant(self, module: str, name: str) -> Any:
        return self.constants.get((module, name))

    # -- calls and writes --
    async def compose(self, call: bt.calls.Call) -> bt.calls.Call:
        self.composed.append(call)
        return call

    async def estimate_fee(self, call: Any, keypair: Any) -> bt.Balance:
        return bt.Balance.from_rao(1_000)

    async def account_next_index(self, address: str) -> int:
        return 0

    async def submit(self, call: Any, keypair: Any, **_: Any) -> bt.ExtrinsicResult:
        if self.submit_outage:
            raise bt.RpcConnectionError("websocket closed while submitting")
        self.submitted.append((call, keypair.ss58_address))
        if self.dispatch_error is not None:
            name, self.dispatch_error = self.dispatch_error, None
            text = f"the chain refused the call: {name}"
            return bt.ExtrinsicResult(success=False, message=text, error=bt.ChainError(text, name))
        return bt.ExtrinsicResult(success=True, message="Success", extrinsic_id=f"{self.head}-0001")


@pytest.fixture(autouse=True)
def _sdk_cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Client.connect caches token symbols on disk; keep that out of the user's home.
    monkeypatch.setenv("BTCLI_TOKEN_SYMBOLS_CACHE", str(tmp_path / "token_symbols.json"))


def subnet(fake: FakeSubstrate, *, rate_limit: int = 100, commit_reveal: bool = False) -> None:
    """A subnet with the validator at uid 0 and the miner at uid 1."""
    sm = "SubtensorModule"
    for uid, key in enumerate((VALIDATOR, MINER)):
        fake.set(sm, "Uids", [NETUID, key.ss58_address], uid)
    fake.set(sm, "CommitRevealWeightsEnabled", [NETUID], commit_reveal)
    fake.set(sm, "WeightsSetRateLimit", [NETUID], rate_limit)
    fake.set(sm, "LastUpdate", [NETUID], [0, 0])
    fake.set(sm, "MinAllowedWeights", [NETUID], 1)
    fake.set(sm, "MaxWeightsLimit", [NETUID], 65535)
    fake.set(sm, "SubnetEpochConsensus", [NETUID], "Yuma")
    fake.set(sm, "Tempo", [NETUID], 360)
    fake.set(sm, "MaxAllowedUids", [NETUID], 256)
    fake.set(sm, "ImmunityPeriod", [NETUID], 5000)
    fake.set(sm, "MaxAllowedValidators", [NETUID], 64)


@pytest.fixture
def fake() -> Iterator[FakeSubstrate]:
    substrate = FakeSubstrate()
    subnet(substrate)
    yield substrate


def chain_for(fake: FakeSubstrate, signer: Any = VALIDATOR, **kwargs: Any) -> BittensorChain:
    kwargs.setdefault("backoff", 0.001)
    return BittensorChain(ENDPOINT, NETUID, signer, substrate=fake, **kwargs)  # type: ignore[arg-type]


# ---- construction -------------------------------------------------------------------------


@pytest.mark.parametrize("network", ["", "   "])
def test_an_empty_network_is_refused(network: str) -> None:
    with pytest.raises(ValueError, match="explicit network"):
        BittensorChain(network, NETUID, VALIDATOR)


def test_the_endpoint_is_the_one_given_never_the_sdk_default() -> None:
    assert BittensorChain(ENDPOINT, NETUID, VALIDATOR).endpoint == ENDPOINT
    assert BittensorChain("ws://127.0.0.1:9944", NETUID).endpoint == "ws://127.0.0.1:9944"


# ---- set_weights --------------------------------------------------------------------------


def test_set_weights_composes_set_mechanism_weights_with_u16_weights(fake: FakeSubstrate) -> None:
    run(chain_for(fake).set_weights([1, 0], [0.8, 0.2]))

    call, signer = fake.submitted[-1]
    assert signer == VALIDATOR.ss58_address
    assert (call.module, call.function) == ("SubtensorModule", "set_mechanism_weights")
    # Max-upscaled to u16: the largest weight becomes 65535, the rest keep their ratio.
    assert call.params == {
        "netuid": NETUID,
        "mecid": 0,
        "dests": [1, 0],
        "weights": [65535, round(0.2 / 0.8 * 65535)],
        "version_key": 0,
    }


def test_set_weights_on_a_commit_reveal_subnet_sends_a_timelocked_commit() -> None:
    fake = FakeSubstrate(block_time=0.25)
    subnet(fake, commit_reveal=True)
    sm = "SubtensorModule"
    fake.set(sm, "RevealPeriodEpochs", [NETUID], 1)
    fake.set(sm, "LastEpochBlock", [NETUID], 900)

    run(chain_for(fake).set_weights([1], [1.0]))

    call, _ = fake.submitted[-1]
    assert (call.module, call.function) == (
        "SubtensorModule",
        "commit_timelocked_mechanism_weights",
    )
    assert call.params["netuid"] == NETUID and call.params["reveal_round"] > 0
    assert len(call.params["commit"]) > 0


def test_too_frequent_set_weights_is_rate_limited_by_the_sdk_preflight(
    fake: FakeSubstrate,
) -> None:
    fake.set("SubtensorModule", "LastUpdate", [NETUID], [fake.head - 5, 0])

    with pytest.raises(RateLimited, match="rate limit is 100 blocks"):
        run(chain_for(fake).set_weights([1], [1.0]))
    assert fake.submitted == []


def test_set_weights_by_an_unregistered_hotkey_raises_not_registered(fake: FakeSubstrate) -> None:
    stranger = keypair_from_uri("//Charlie")
    with pytest.raises(NotRegistered, match="not registered"):
        run(chain_for(fake, stranger).set_weights([1], [1.0]))
    assert fake.submitted == []


def test_the_chains_no_permit_refusal_raises_no_validator_permit(fake: FakeSubstrate) -> None:
    fake.dispatch_error = "NeuronNoValidatorPermit"
    with pytest.raises(NoValidatorPermit, match="NeuronNoValidatorPermit"):
        run(chain_for(fake, MINER).set_weights([0], [1.0]))


def test_the_chains_too_fast_refusal_raises_rate_limited(fake: FakeSubstrate) -> None:
    fake.dispatch_error = "SettingWeightsTooFast"
    with pytest.raises(RateLimited, match="SettingWeightsTooFast"):
        run(chain_for(fake).set_weights([1], [1.0]))


@pytest.mark.parametrize(
    ("uids", "weights"), [([1], [0.0]), ([1, 2], [1.0]), ([1], [float("nan")]), ([1, 1], [1, 1])]
)
def test_weights_the_sdk_cannot_send_raise_invalid_weights(
    fake: FakeSubstrate, uids: list[int], weights: list[float]
) -> None:
    with pytest.raises(InvalidWeights):
        run(chain_for(fake).set_weights(uids, weights))
    assert fake.submitted == []


def test_a_write_that_loses_the_connection_raises_unavailable_once(fake: FakeSubstrate) -> None:
    fake.submit_outage = True
    with pytest.raises(ChainUnavailable, match="set_weights"):
        run(chain_for(fake).set_weights([1], [1.0]))
    assert fake.connects == 1  # not retried: it may already be in a block


# ---- commitments --------------------------------------------------------------------------


def test_commit_sends_raw_fields_signed_by_the_hotkey(fake: FakeSubstrate) -> None:
    run(chain_for(fake).commit('{"bucket":"b"}'))

    call, signer = fake.submitted[-1]
    assert signer == VALIDATOR.ss58_address
    assert (call.module, call.function) == ("Commitments", "set_commitment")
    assert call.params == {
        "netuid": NETUID,
        "info": {"fields": [{"Raw14": "0x" + b'{"bucket":"b"}'.hex()}]},
    }


def test_a_long_commitment_is_split_into_128_byte_fields() -> None:
    fields = commitment_info(b"x" * 300)["fields"]
    assert [next(iter(f)) for f in fields] == ["Raw128", "Raw128", "Raw44"]


def test_a_commitment_over_the_chain_limit_is_refused_before_signing(fake: FakeSubstrate) -> None:
    with pytest.raises(ChainError, match="chain holds 384"):
        run(chain_for(fake).commit("x" * 385))
    assert fake.submitted == []


def test_commitments_read_back_as_text_by_hotkey(fake: FakeSubstrate) -> None:
    record = {"block": 990, "deposit": 0, "info": commitment_info(b'{"bucket":"b"}')}
    fake.maps[("Commitments", "CommitmentOf", (NETUID,))] = [(VALIDATOR.ss58_address, record)]

    assert run(chain_for(fake).commitments()) == {VALIDATOR.ss58_address: '{"bucket":"b"}'}


# ---- reads --------------------------------------------------------------------------------


def _graph(block: int) -> dict[str, Any]:
    return {
        "block": block,
        "tempo": 360,
        "last_step": 900,
        "blocks_since_last_step": 100,
        "owner_hotkey": VALIDATOR.ss58_address,
        "owner_coldkey": VALIDATOR.ss58_address,
        "network_registered_at": 1,
        "hotkeys": [VALIDATOR.ss58_address, MINER.ss58_address],
        "coldkeys": ["5Cold0", "5Cold1"],
        "validator_permit": [True, False],
        "last_update": [995, 0],
        "block_at_registration": [10, 20],
        "incentives": [0, 65535],
        "dividends": [65535, 0],
        "emission": [2_000_000_000, 1_000_000_000],
        "total_stake": [5_000_000_000, 0],
    }


def test_metagraph_converts_to_project_types_with_weights(fake: FakeSubstrate) -> None:
    fake.runtime[("SubnetInfoRuntimeApi", "get_metagraph")] = lambda netuid: _graph(fake.head)
    fake.maps[("SubtensorModule", "Weights", (NETUID,))] = [(0, [(1, 65535), (0, 21845)])]

    graph = run(chain_for(fake).metagraph())

    assert graph.netuid == NETUID and graph.block == fake.head
    validator, miner = graph.neurons
    assert (validator.uid, validator.hotkey, validator.coldkey) == (
        0,
        VALIDATOR.ss58_address,
        "5Cold0",
    )
    assert validator.validator_permit and not miner.validator_permit
    assert validator.stake == pytest.approx(5.0) and validator.dividends == pytest.approx(1.0)
    assert miner.incentive == pytest.approx(1.0) and miner.emission == pytest.approx(1.0)
    assert (validator.last_update, miner.registered_at) == (995, 20)
    assert graph.weights == {0: {1: pytest.approx(0.75), 0: pytest.approx(0.25)}}
    assert not any(type(v).__module__.startswith("bittensor") for v in vars(validator).values())


def test_hyperparameters_come_from_subnet_storage(fake: FakeSubstrate) -> None:
    params = run(chain_for(fake).hyperparameters())
    assert (params.tempo, params.weights_rate_limit, params.max_uids) == (360, 100, 256)
    assert (params.immunity_period, params.max_validators) == (5000, 64)
    assert params.commitment_max_bytes == 3 * 128


def test_block_timestamps_come_from_the_timestamp_pallet_and_extrapolate(
    fake: FakeSubstrate,
) -> None:
    stamps = {998: 1_700_000_000_000, 999: 1_700_000_012_000, 1000: 1_700_000_024_000}

    async def query(module: str, name: str, params: Any = None, block_hash: Any = None) -> Any:
        if (module, name) == ("Timestamp", "Now"):
            return stamps[int(block_hash, 16)]
        return await FakeSubstrate.query(fake, module, name, params, block_hash)

    fake.query = query  # type: ignore[method-assign]
    chain = chain_for(fake)

    past, head, future = (run(chain.block_timestamp(b)) for b in (998, 1000, 1005))
    assert past == 1_700_000_000.0 and head == 1_700_000_024.0
    assert future == head + 5 * 12.0
    assert run(chain.block_time()) == 12.0


def test_register_returns_the_existing_uid(fake: FakeSubstrate) -> None:
    assert run(chain_for(fake, MINER).register()) == 1
    assert fake.submitted == []


def test_register_with_only_a_hotkey_raises_not_registered(fake: FakeSubstrate) -> None:
    with pytest.raises(NotRegistered, match="btcli subnets register"):
        run(chain_for(fake, keypair_from_uri("//Dave")).register())


# ---- outages ------------------------------------------------------------------------------


def test_a_read_survives_a_short_outage_by_reconnecting(fake: FakeSubstrate) -> None:
    fake.outages = 2
    assert run(chain_for(fake).current_block()) == fake.head
    assert fake.connects == 3  # one fresh connection per retry


def test_a_long_outage_raises_chain_unavailable_after_bounded_retries(
    fake: FakeSubstrate,
) -> None:
    fake.outages = 100
    with pytest.raises(ChainUnavailable, match="after 3 tries: websocket closed"):
        run(chain_for(fake, retries=2).metagraph())
    assert fake.outages == 97
