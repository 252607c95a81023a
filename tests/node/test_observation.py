"""Observed arrival end to end on real filesystem buckets: the observer's polls, the reveal
phase and the verdicts, with the chain head moved by hand between rounds.

Window 3 of 10 blocks: uploads until the deadline block 40, the observation closes at 41
(grace 1 block), reveals count until 43."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from node_helpers import LIMITS, NETUID, Miner, ScriptedChain, make_miner, payload, upload_sealed

import gauntlet.node.observer as observer_module
from gauntlet.compress.codec import DenseCodec, param_shapes
from gauntlet.localnet.reading import read_current
from gauntlet.model import build_model
from gauntlet.node import peer_reads
from gauntlet.node.checks import Verdict, check_window, mark_late, measure_updates
from gauntlet.node.gather import Contribution, Decoder, decode_update, judge_window
from gauntlet.node.observer import Observer
from gauntlet.node.reveals import collect_reveals, publish_reveal
from gauntlet.node.spool import Spool
from gauntlet.score.config import ScoringConfig
from protocol.keys import contribution_key
from protocol.windows import Timeline

WINDOW = 3
TIMELINE = Timeline(blocks_per_window=10, grace_blocks=1, reveal_blocks=2, record_blocks=5)
DEADLINE, CLOSE, REVEAL_CLOSE = 40, 41, 43


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return build_model("tiny", seed=0)


class StaticPeers:
    def __init__(self, miners: list[Miner]) -> None:
        self.list = miners

    async def miners(self, chain: ScriptedChain) -> tuple[None, list]:
        return None, [m.peer for m in self.list]


class Validator:
    """What the observer, the reveal phase and the verdicts need of a validator."""

    def __init__(self, miners: list[Miner], model: torch.nn.Module) -> None:
        self.miners = miners
        self.chain = ScriptedChain(block=30)
        self.rt = SimpleNamespace(
            chain=self.chain,
            peers=StaticPeers(miners),
            config=SimpleNamespace(chain=SimpleNamespace(netuid=NETUID)),
            limits=LIMITS,
        )
        spool = Spool(miners[0].store.inner.base.parent / "spool")  # type: ignore[attr-defined]
        self.observer = Observer(self.rt, TIMELINE, poll_seconds=0.0, spool=spool)  # type: ignore[arg-type]
        self.decoder = Decoder(NETUID, LIMITS, DenseCodec(), param_shapes(model), "cpu")

    async def poll_at(self, *blocks: int) -> None:
        for block in blocks:
            self.chain.block = block
            await self.observer.poll_round()

    async def reveal_all(self, *, but: tuple[int, ...] = ()) -> None:
        for m in self.miners:
            if WINDOW in m.keys and m.uid not in but:
                await publish_reveal(
                    m.store.inner,
                    netuid=NETUID,
                    window=WINDOW,
                    key=m.keys[WINDOW],
                    signer=m.keypair,
                )

    async def verdicts(self) -> dict[int, Contribution]:
        arrivals = await self.observer.closed(WINDOW)
        self.chain.block = REVEAL_CLOSE
        reveals = await collect_reveals(
            self.chain,
            {m.uid: m.peer for m in self.miners},
            window=WINDOW,
            netuid=NETUID,
            observed=list(arrivals.accepted),
            reveal_close=REVEAL_CLOSE,
        )
        peers = [m.peer for m in self.miners]
        return {c.uid: c for c in judge_window(peers, WINDOW, arrivals, reveals, self.decoder)}

    async def final_outcomes(self) -> dict[int, Verdict]:
        """Fast-filter outcomes as the validator reports them (late uploads relabelled)."""
        verdicts = {
            c.uid: Verdict(c.uid, c.hotkey, c.status, reason=c.reason)
            for c in (await self.verdicts()).values()
        }
        await mark_late(verdicts, [m.peer for m in self.miners], WINDOW, CLOSE)
        return verdicts


def _backdate(miner: Miner, seconds_ago: float) -> None:
    path = miner.store.inner.base / contribution_key(WINDOW, miner.hotkey)  # type: ignore[attr-defined]
    then = os.stat(path).st_mtime - seconds_ago
    os.utime(path, (then, then))


def test_an_upload_observed_in_time_and_revealed_is_ok(tmp_path: Path, model) -> None:
    async def run() -> dict[int, Contribution]:
        miner = make_miner(tmp_path, 1)
        v = Validator([miner], model)
        await upload_sealed(miner, WINDOW, payload(model, miner, WINDOW))
        await v.poll_at(35, 40, 41)
        assert v.observer.windows[WINDOW].complete and v.observer.windows[WINDOW].closed
        await v.reveal_all()
        return await v.verdicts()

    (verdict,) = asyncio.run(run()).values()
    assert verdict.ok and verdict.observed_block == 35
    decoder = Decoder(NETUID, LIMITS, DenseCodec(), param_shapes(model), "cpu")
    torch.testing.assert_close(
        decode_update(verdict, decoder)["output.weight"],
        torch.full_like(model.output.weight, 0.002),
    )


def test_a_backdated_upload_made_after_the_close_is_late(tmp_path: Path, model) -> None:
    """The miner's server claims the object is an hour old; the validator saw it only at the
    close, so it is late whatever Last-Modified says."""

    async def run() -> dict[int, Verdict]:
        honest, cheat = make_miner(tmp_path, 1), make_miner(tmp_path, 2)
        v = Validator([honest, cheat], model)
        await upload_sealed(honest, WINDOW, payload(model, honest, WINDOW))
        await v.poll_at(36, 40)
        await upload_sealed(cheat, WINDOW, payload(model, cheat, WINDOW))
        _backdate(cheat, 3600)
        await v.poll_at(41)
        await v.reveal_all()
        return await v.final_outcomes()

    verdicts = asyncio.run(run())
    assert verdicts[1].outcome == "ok"
    assert verdicts[2].outcome == "late"
    assert "uploaded after the observation closed at block 41" in verdicts[2].reason


def test_an_upload_the_closing_round_finds_is_late(tmp_path: Path, model) -> None:
    """A round that started before the close but ended after it does not count its finds."""

    async def run() -> dict[int, Contribution]:
        miner = make_miner(tmp_path, 1)
        v = Validator([miner], model)
        await v.poll_at(36)
        await upload_sealed(miner, WINDOW, payload(model, miner, WINDOW))
        v.chain.block = 40
        real_miners = v.rt.peers.miners

        async def slow_round(chain):  # the head moves past the close during the round
            result = await real_miners(chain)
            v.chain.block = 41
            return result

        v.rt.peers.miners = slow_round
        await v.observer.poll_round()
        await v.reveal_all()
        return await v.verdicts()

    verdict = asyncio.run(run())[1]
    assert verdict.status == "late" and "not observed before block 41" in verdict.reason


def test_a_reupload_after_the_close_does_not_replace_the_observed_version(
    tmp_path: Path, model
) -> None:
    async def run() -> dict[int, Contribution]:
        miner = make_miner(tmp_path, 1)
        v = Validator([miner], model)
        await upload_sealed(miner, WINDOW, payload(model, miner, WINDOW, scale=0.5))
        await v.poll_at(38, 40)
        await upload_sealed(miner, WINDOW, payload(model, miner, WINDOW, scale=9.0))  # new key too
        await v.poll_at(41)
        await v.reveal_all()  # reveals the key of the second upload
        return await v.verdicts()

    verdict = asyncio.run(run())[1]
    # The observed ciphertext was sealed under the first key: the reveal does not open it.
    assert verdict.status == "invalid" and "bad_reveal" in verdict.reason


def test_the_first_observed_of_two_identical_uploads_is_the_original(tmp_path: Path, model) -> None:
    """The copier backdates its object; copy verdicts follow the observed blocks."""

    async def run() -> dict[int, Contribution]:
        first, copier = make_miner(tmp_path, 1), make_miner(tmp_path, 2)
        v = Validator([first, copier], model)
        await upload_sealed(first, WINDOW, payload(model, first, WINDOW, scale=0.003))
        await v.poll_at(33)
        await upload_sealed(copier, WINDOW, payload(model, copier, WINDOW, scale=0.003))
        _backdate(copier, 3600)
        await v.poll_at(37, 40, 41)
        await v.reveal_all()
        return await v.verdicts()

    contributions = asyncio.run(run())
    assert contributions[1].observed_block == 33 and contributions[2].observed_block == 37
    config = ScoringConfig()
    decoder = Decoder(NETUID, LIMITS, DenseCodec(), param_shapes(model), "cpu")
    norms, sketches = measure_updates(list(contributions.values()), decoder, config)
    verdicts = check_window(
        list(contributions.values()),
        window=WINDOW,
        assigned=lambda uid, hotkey: [1, 2],
        own_fingerprint=[0.0],
        magnitudes=[0.0],
        sketches=sketches,
        norms=norms,
        history=[],
        config=config,
    )
    assert verdicts[1].outcome == "ok"
    assert verdicts[2].outcome == "copy" and "uid 1, observed later" in verdicts[2].reason


def test_a_failed_first_get_is_retried_by_the_next_round(tmp_path: Path, model) -> None:
    async def run() -> dict[int, Contribution]:
        miner = make_miner(tmp_path, 1)
        v = Validator([miner], model)
        await upload_sealed(miner, WINDOW, payload(model, miner, WINDOW))
        miner.store.failing_gets = 1
        await v.poll_at(34)
        assert 1 not in v.observer.windows[WINDOW].accepted
        await v.poll_at(35, 40, 41)
        await v.reveal_all()
        return await v.verdicts()

    assert asyncio.run(run())[1].ok


def test_an_eight_second_store_outage_is_no_worse_than_missing(tmp_path: Path, model) -> None:
    """One miner's store is down for 8 one-second blocks up to the close: that miner is
    missing (never unreadable or invalid), the others are untouched."""

    async def run() -> dict[int, Contribution]:
        miners = [make_miner(tmp_path, uid) for uid in (1, 2, 3)]
        v = Validator(miners, model)
        for m in miners:
            await upload_sealed(m, WINDOW, payload(model, m, WINDOW))
        miners[0].store.down = True
        await v.poll_at(*range(33, 42))
        miners[0].store.down = False
        await v.reveal_all()
        return await v.verdicts()

    verdicts = asyncio.run(run())
    assert verdicts[1].status == "missing" and "unavailable" in verdicts[1].reason
    assert verdicts[2].ok and verdicts[3].ok


def test_an_outage_that_ends_before_the_close_costs_nothing(tmp_path: Path, model) -> None:
    async def run() -> dict[int, Contribution]:
        miner = make_miner(tmp_path, 1)
        v = Validator([miner], model)
        await upload_sealed(miner, WINDOW, payload(model, miner, WINDOW))
        miner.store.down = True
        await v.poll_at(*range(31, 39))
        miner.store.down = False
        await v.poll_at(40, 41)
        await v.reveal_all()
        return await v.verdicts()

    assert asyncio.run(run())[1].ok


def test_an_unrevealed_upload_is_late_and_a_wrong_reveal_invalid(tmp_path: Path, model) -> None:
    async def run() -> dict[int, Contribution]:
        silent, liar = make_miner(tmp_path, 1), make_miner(tmp_path, 2)
        v = Validator([silent, liar], model)
        for m in (silent, liar):
            await upload_sealed(m, WINDOW, payload(model, m, WINDOW))
        await v.poll_at(39, 40, 41)
        liar.keys[WINDOW] = bytes(32)
        await v.reveal_all(but=(1,))
        return await v.verdicts()

    verdicts = asyncio.run(run())
    assert verdicts[1].status == "late" and "not revealed" in verdicts[1].reason
    assert verdicts[2].status == "invalid" and "bad_reveal" in verdicts[2].reason


def test_an_observation_without_a_round_after_the_deadline_is_incomplete(
    tmp_path: Path, model
) -> None:
    async def run() -> bool:
        v = Validator([make_miner(tmp_path, 1)], model)
        await v.poll_at(33, 39, 42)
        return v.observer.windows[WINDOW].complete

    assert asyncio.run(run()) is False


def test_no_miner_can_read_another_miners_upload_before_its_reveal(tmp_path: Path, model) -> None:
    """What a copier or crowd-mixer reads before the close is ciphertext: nothing opens it
    until the author reveals its key after the observation closed."""

    async def run() -> tuple[object, object, bytes, bytes]:
        victim = make_miner(tmp_path, 1)
        data = payload(model, victim, WINDOW)
        sealed = await upload_sealed(victim, WINDOW, data)
        reader = SimpleNamespace(
            config=SimpleNamespace(
                storage=SimpleNamespace(max_payload_bytes=LIMITS.max_bytes),
                chain=SimpleNamespace(netuid=NETUID),
            )
        )
        before = await read_current(reader, victim.peer, WINDOW)  # type: ignore[arg-type]
        await publish_reveal(
            victim.store.inner, netuid=NETUID, window=WINDOW, key=victim.keys[WINDOW],
            signer=victim.keypair,
        )  # fmt: skip
        after = await read_current(reader, victim.peer, WINDOW)  # type: ignore[arg-type]
        return before, after, sealed, data

    before, after, sealed, data = asyncio.run(run())
    assert before is None and after is not None
    manifest_json = data[8 : 8 + int.from_bytes(data[:8], "little")]
    assert manifest_json not in sealed  # not even the manifest is readable in the ciphertext


def test_a_chain_outage_during_the_uploads_leaves_the_window_unjudged(
    tmp_path: Path, model
) -> None:
    """Honest miners need the chain to learn a window: when it was unreachable for blocks
    of the upload phase, nobody is judged on that window (issue 15: every honest miner was
    scored missing for the windows an outage spanned)."""

    async def run() -> tuple[bool, bool, bool]:
        miner = make_miner(tmp_path, 1)
        v = Validator([miner], model)
        await upload_sealed(miner, WINDOW, payload(model, miner, WINDOW))
        await v.poll_at(33)
        v.observer.chain_failed()  # the chain goes away at block 33 ...
        await v.poll_at(37, 40, 41)  # ... and is back at 37, before the deadline
        arrivals = await v.observer.closed(WINDOW)
        return arrivals.spoiled, arrivals.complete, bool(arrivals.accepted)

    spoiled, complete, accepted = asyncio.run(run())
    assert spoiled and not complete
    assert accepted  # the upload was still seen; it is just not judged


def test_a_lost_poll_is_not_an_outage(tmp_path: Path, model) -> None:
    async def run() -> bool:
        v = Validator([make_miner(tmp_path, 1)], model)
        await v.poll_at(33)
        v.observer.chain_failed()
        await v.poll_at(34, 40, 41)  # back within a block
        return (await v.observer.closed(WINDOW)).complete

    assert asyncio.run(run())


def test_an_outage_after_the_deadline_spoils_nothing(tmp_path: Path, model) -> None:
    async def run() -> bool:
        v = Validator([make_miner(tmp_path, 1)], model)
        await v.poll_at(33, 40)
        v.observer.chain_failed()  # gone after the deadline's round ...
        await v.poll_at(44)  # ... back after the close
        return (await v.observer.closed(WINDOW)).spoiled

    assert not asyncio.run(run())


@pytest.mark.parametrize("rounds", [(25, 55), (33, 39, 95)], ids=["jumped-over", "pruned"])
def test_a_window_no_round_opened_closes_unjudged_without_waiting(
    tmp_path: Path, model, rounds: tuple[int, ...]
) -> None:
    """A round slow enough to jump over a window's whole upload phase (a starved host, a
    slow store), or a validator so far behind that the window was pruned: the validator
    must not wait for that window forever; nobody is judged on it."""

    async def run() -> tuple[bool, bool, dict]:
        v = Validator([make_miner(tmp_path, 1)], model)
        await v.poll_at(*rounds)
        arrivals = await asyncio.wait_for(v.observer.closed(WINDOW), timeout=5)
        return arrivals.closed, arrivals.complete, arrivals.accepted

    assert asyncio.run(run()) == (True, False, {})


@pytest.mark.parametrize("stall", ["head", "get"])
def test_a_tarpit_server_cannot_hold_up_the_rounds(tmp_path: Path, model, stall: str) -> None:
    """A miner whose server holds requests open (its HEAD, or the GET of a fresh version):
    every round still ends in time, so the window is complete and everyone else is judged;
    the tarpit is missing (a transient fault), and at most one of its reads per window is
    open at once."""
    round_seconds = 0.2

    async def run() -> tuple[dict[int, Contribution], list[float], bool, int]:
        miners = [make_miner(tmp_path, uid) for uid in (1, 2, 3)]
        v = Validator(miners, model)
        v.observer.round_seconds = round_seconds
        for m in miners:
            await upload_sealed(m, WINDOW, payload(model, m, WINDOW))
        miners[1].store.stall = {stall}
        durations = []
        for block in (33, 39, 40, 41):
            began = time.monotonic()
            await asyncio.wait_for(v.poll_at(block), timeout=5)  # a round that waits: fails
            durations.append(time.monotonic() - began)
        complete = v.observer.windows[WINDOW].complete
        await v.reveal_all()
        return await v.verdicts(), durations, complete, miners[1].store.stalled

    verdicts, durations, complete, stalled = asyncio.run(run())
    assert complete
    assert verdicts[1].ok and verdicts[3].ok
    assert verdicts[2].status == "missing" and "timeout" in verdicts[2].reason
    assert max(durations) < round_seconds + 0.5, durations
    # no second read while the first is held: one per window looked at (3, and 4 from block 40)
    assert stalled == (2 if stall == "head" else 1)


def test_a_tarpit_after_the_close_delays_the_judgement_by_one_small_read_at_most(
    tmp_path: Path, model, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Served in time, then the reveal read held open (miner 2); never uploaded, every HEAD
    held open (miner 3): the reveal phase and the late-check each wait one small read, and
    the verdicts are what they would be from a server that said nothing."""
    monkeypatch.setattr(peer_reads, "SMALL_READ_SECONDS", 0.3)

    async def run() -> tuple[dict[int, Verdict], float]:
        miners = [make_miner(tmp_path, uid) for uid in (1, 2, 3)]
        v = Validator(miners, model)
        v.observer.round_seconds = 0.2
        for m in miners[:2]:
            await upload_sealed(m, WINDOW, payload(model, m, WINDOW))
        miners[2].store.stall = {"head", "get"}
        await v.poll_at(35, 40, 41)
        await v.reveal_all(but=(2,))
        miners[1].store.stall = {"head", "get"}
        began = time.monotonic()
        outcomes = await asyncio.wait_for(v.final_outcomes(), timeout=10)
        return outcomes, time.monotonic() - began

    outcomes, elapsed = asyncio.run(run())
    assert outcomes[1].outcome == "ok"
    assert outcomes[2].outcome == "late"  # observed, never revealed (to us)
    assert outcomes[3].outcome == "missing"
    assert elapsed < 2 * 0.3 + 1.0, elapsed


@pytest.mark.parametrize("by_standing", [True, False], ids=["by-standing", "first-come"])
def test_a_miner_with_a_standing_downloads_before_tarpit_sybils_queued_earlier(
    tmp_path: Path, model, monkeypatch: pytest.MonkeyPatch, by_standing: bool
) -> None:
    """One download slot. Two tarpit sybils (no standing) hold and queue for it from the
    first round; an honest miner with a standing uploads later. When the held download
    reaches its limit (1 s) the slot goes to the honest miner, not to the sybil that
    asked first, so it is found 1.35 s in; first come, first served it would still wait
    behind the second sybil's held download (the control case)."""
    monkeypatch.setattr(peer_reads, "DOWNLOAD_ALLOWANCE_SECONDS", 1.0)
    monkeypatch.setattr(peer_reads, "DOWNLOAD_FLOOR_BYTES_PER_SECOND", 2**40)
    monkeypatch.setattr(observer_module, "MAX_CONCURRENT_FETCHES", 1)

    async def run() -> bool:
        honest, *sybils = [make_miner(tmp_path, uid) for uid in (1, 2, 3)]
        v = Validator([honest, *sybils], model)
        v.observer.round_seconds = 0.05
        if by_standing:
            v.observer.priority = lambda uid: 1.0 if uid == honest.uid else 0.0
        for sybil in sybils:
            await upload_sealed(sybil, WINDOW, payload(model, sybil, WINDOW))
            sybil.store.stall = {"get"}
        await v.poll_at(33)  # sybil 2 holds the slot, sybil 3 waits for it
        await upload_sealed(honest, WINDOW, payload(model, honest, WINDOW))
        await v.poll_at(34)  # the honest download waits too, behind both
        await asyncio.sleep(1.25)  # past the held download's limit, not the next one's
        await v.poll_at(35)
        return honest.uid in v.observer.windows[WINDOW].accepted

    assert asyncio.run(run()) is by_standing
