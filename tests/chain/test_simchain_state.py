"""The simulated chain's rules, driven by a manual clock (no sleeping, no sockets)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gauntlet.chain.base import (
    Hyperparameters,
    InvalidWeights,
    NotRegistered,
    NoValidatorPermit,
    RateLimited,
    Unauthorized,
)
from gauntlet.chain.sim.clock import ManualClock
from gauntlet.chain.sim.errors import CommitmentTooLarge, SubnetFull
from gauntlet.chain.sim.state import ChainState
from gauntlet.chain.sim.status import format_metagraph
from gauntlet.chain.sim.weights import quantise_u16

NET = 3
PARAMS = Hyperparameters(
    tempo=10,
    weights_rate_limit=5,
    max_uids=4,
    immunity_period=20,
    max_validators=2,
    commitment_max_bytes=16,
)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def chain(tmp_path: Path, clock: ManualClock) -> Iterator[ChainState]:
    state = ChainState(tmp_path / "chain.sqlite", clock, block_time=1.0, defaults=PARAMS)
    yield state
    state.close()


def test_block_is_derived_from_time_since_genesis(chain: ChainState, clock: ManualClock) -> None:
    assert chain.block() == 0
    clock.advance(2.5)
    assert chain.block() == 2
    assert chain.block_timestamp(7) == chain.genesis_time + 7.0


def test_a_held_chain_stays_at_block_0_and_counts_from_its_release(
    tmp_path: Path, clock: ManualClock
) -> None:
    held = [True]
    db = tmp_path / "held.sqlite"
    state = ChainState(db, clock, block_time=1.0, defaults=PARAMS, held=lambda: held[0])
    assert state.register(NET, "hk0") == 0  # registration needs no block to pass
    clock.advance(30.0)
    assert state.block() == 0
    held[0] = False
    clock.advance(7.0)  # no call in between: block 0 still starts when the release is seen
    released = clock.now()
    assert state.block() == 0
    clock.advance(2.5)
    assert state.block() == 2 and state.block_timestamp(2) == released + 2.0
    held[0] = True  # once released, a hold has no effect
    clock.advance(1.0)
    assert state.block() == 3
    state.close()
    # reopened (the localnet restarts its chain in an outage): the released genesis is kept,
    # and a hold on an existing chain is ignored, so blocks never jump back
    again = ChainState(db, clock, block_time=1.0, defaults=PARAMS, held=lambda: True)
    assert again.genesis_time == released and again.block() == 3
    again.close()


def test_registration_hands_out_sequential_uids(chain: ChainState) -> None:
    assert [chain.register(NET, f"hk{i}") for i in range(3)] == [0, 1, 2]


def test_reregistering_a_hotkey_returns_its_uid(chain: ChainState) -> None:
    chain.register(NET, "a")
    assert chain.register(NET, "b") == 1
    assert chain.register(NET, "b") == 1
    assert len(chain.metagraph(NET).neurons) == 2


def test_subnets_are_independent(chain: ChainState) -> None:
    chain.register(1, "a")
    assert chain.register(2, "b") == 0


def test_full_subnet_inside_immunity_rejects_registration(chain: ChainState) -> None:
    for i in range(PARAMS.max_uids):
        chain.register(NET, f"hk{i}")
    with pytest.raises(SubnetFull):
        chain.register(NET, "late")


def test_full_subnet_replaces_lowest_incentive_outside_immunity(
    chain: ChainState, clock: ManualClock
) -> None:
    chain.register(NET, "v", stake=100.0)
    for i in (1, 2, 3):
        chain.register(NET, f"m{i}")
    chain.set_weights(NET, "v", [0, 1, 2, 3], [1.0, 1.0, 0.1, 1.0])
    clock.advance(PARAMS.immunity_period + PARAMS.tempo)
    assert chain.register(NET, "newcomer") == 2
    mg = chain.metagraph(NET)
    assert mg.by_hotkey("m2") is None
    assert mg.by_uid(2).hotkey == "newcomer"  # type: ignore[union-attr]
    assert 2 not in mg.weights[0], "weights onto the replaced uid must not carry over"


def test_permits_go_to_the_top_stakes_only(chain: ChainState) -> None:
    for hotkey, stake in (("low", 10.0), ("high", 50.0), ("mid", 30.0), ("none", 0.0)):
        chain.register(NET, hotkey, stake=stake)
    permits = {n.hotkey for n in chain.metagraph(NET).neurons if n.validator_permit}
    assert permits == {"high", "mid"}


def test_zero_stake_never_gets_a_permit(chain: ChainState) -> None:
    chain.register(NET, "a")
    assert not chain.metagraph(NET).by_hotkey("a").validator_permit  # type: ignore[union-attr]


def test_set_weights_requires_registration(chain: ChainState) -> None:
    with pytest.raises(NotRegistered):
        chain.set_weights(NET, "ghost", [0], [1.0])


def test_set_weights_requires_a_validator_permit(chain: ChainState) -> None:
    chain.register(NET, "miner")
    with pytest.raises(NoValidatorPermit):
        chain.set_weights(NET, "miner", [0], [1.0])


def test_set_weights_is_rate_limited_in_blocks(chain: ChainState, clock: ManualClock) -> None:
    chain.register(NET, "v", stake=1.0)
    chain.set_weights(NET, "v", [0], [1.0])
    clock.advance(PARAMS.weights_rate_limit - 1)
    with pytest.raises(RateLimited):
        chain.set_weights(NET, "v", [0], [1.0])
    clock.advance(1)
    chain.set_weights(NET, "v", [0], [1.0])
    assert chain.metagraph(NET).by_uid(0).last_update == PARAMS.weights_rate_limit  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("uids", "weights"),
    [
        ([0, 1], [1.0]),  # lengths differ
        ([], []),  # empty
        ([0, 0], [1.0, 1.0]),  # duplicate uid
        ([0, 9], [1.0, 1.0]),  # unregistered uid
        ([0, 1], [1.0, -0.5]),  # negative
        ([0, 1], [1.0, float("nan")]),  # not finite
        ([0, 1], [0.0, 0.0]),  # all zero
    ],
)
def test_invalid_weights_are_rejected(
    chain: ChainState, uids: list[int], weights: list[float]
) -> None:
    chain.register(NET, "v", stake=1.0)
    chain.register(NET, "m")
    with pytest.raises(InvalidWeights):
        chain.set_weights(NET, "v", uids, weights)


def test_weights_are_quantised_to_u16_with_max_65535() -> None:
    assert quantise_u16([0.5, 0.25, 0.0]) == [65535, 32768, 0]


def test_stored_weights_read_back_row_normalised(chain: ChainState) -> None:
    chain.register(NET, "v", stake=1.0)
    chain.register(NET, "m1")
    chain.register(NET, "m2")
    chain.set_weights(NET, "v", [1, 2], [3.0, 1.0])
    row = chain.metagraph(NET).weights[0]
    assert sum(row.values()) == pytest.approx(1.0)
    assert row[1] == pytest.approx(0.75, abs=1e-4)
    assert row[2] == pytest.approx(0.25, abs=1e-4)


def test_epoch_incentive_follows_the_high_stake_validator(
    chain: ChainState, clock: ManualClock
) -> None:
    chain.register(NET, "big", stake=90.0)
    chain.register(NET, "small", stake=10.0)
    chain.register(NET, "favoured")
    chain.register(NET, "colluder")
    chain.set_weights(NET, "big", [2], [1.0])
    chain.set_weights(NET, "small", [3], [1.0])
    clock.advance(PARAMS.tempo)
    mg = chain.metagraph(NET)
    by = {n.hotkey: n for n in mg.neurons}
    assert by["favoured"].incentive == pytest.approx(1.0)
    assert by["colluder"].incentive == pytest.approx(0.0)
    assert by["big"].dividends > by["small"].dividends
    assert sum(n.emission for n in mg.neurons) == pytest.approx(PARAMS.tempo)


def test_commitments_keep_the_latest_per_hotkey(chain: ChainState) -> None:
    chain.register(NET, "a")
    chain.commit(NET, "a", "first")
    chain.commit(NET, "a", "second")
    assert chain.commitments(NET) == {"a": "second"}


def test_commitments_are_size_capped_and_need_registration(chain: ChainState) -> None:
    chain.register(NET, "a")
    with pytest.raises(CommitmentTooLarge):
        chain.commit(NET, "a", "x" * (PARAMS.commitment_max_bytes + 1))
    with pytest.raises(NotRegistered):
        chain.commit(NET, "ghost", "x")


def test_nonces_must_strictly_increase_per_hotkey(chain: ChainState) -> None:
    chain.accept_nonce("a", 5)
    chain.accept_nonce("b", 1)
    with pytest.raises(Unauthorized):
        chain.accept_nonce("a", 5)
    chain.accept_nonce("a", 6)


def test_events_record_every_kind_of_change(chain: ChainState, clock: ManualClock) -> None:
    chain.register(NET, "v", stake=1.0)
    chain.commit(NET, "v", "c")
    chain.set_weights(NET, "v", [0], [1.0])
    clock.advance(PARAMS.tempo)
    kinds = [e.kind for e in chain.events(netuid=NET)]
    assert kinds == ["register", "commit", "set_weights", "epoch"]
    assert chain.events(after=chain.events()[-1].id) == []


def test_reopening_keeps_genesis_block_time_and_state(tmp_path: Path, clock: ManualClock) -> None:
    db = tmp_path / "chain.sqlite"
    first = ChainState(db, clock, block_time=1.0, defaults=PARAMS)
    first.register(NET, "a", stake=2.0)
    first.commit(NET, "a", "bucket")
    genesis = first.genesis_time
    first.close()
    clock.advance(30)
    again = ChainState(db, clock, block_time=5.0)
    assert (again.genesis_time, again.block_time, again.block()) == (genesis, 1.0, 30)
    assert again.metagraph(NET).by_hotkey("a").stake == 2.0  # type: ignore[union-attr]
    assert again.commitments(NET) == {"a": "bucket"}
    assert again.hyperparameters(NET) == PARAMS
    again.close()


def test_status_table_lists_every_neuron(chain: ChainState) -> None:
    chain.register(NET, "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY", stake=1.0)
    table = format_metagraph(chain.metagraph(NET))
    assert "5Grwva…utQY" in table
    assert "incentive" in table.splitlines()[1]
