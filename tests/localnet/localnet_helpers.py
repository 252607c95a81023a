"""Hand-made window reports and run results for the localnet result/report tests."""

from __future__ import annotations

from gauntlet.localnet.results import RunMeta, RunResults
from protocol.schemas import PeerResult, WindowReport

LEAD = "lead"


def peer(uid: int, weight: float, *, status: str = "ok", score: float | None = None) -> PeerResult:
    return PeerResult(
        uid=uid,
        hotkey=f"miner{uid}",
        status=status,
        score=weight if score is None else score,
        reason="" if status == "ok" else f"{status} of another miner",
        rating=10.0 * weight,
        weight=weight,
        sync=0.9,
        own_improvement=0.05,
        random_improvement=0.04,
        own_advantage=0.01,
        declared_pages=3,
        uniqueness=0.5,
    )


def report(window: int, before: float, after: float, peers: list[PeerResult]) -> WindowReport:
    return WindowReport(
        window=window,
        hotkey=LEAD,
        validation_loss_before=before,
        validation_loss_after=after,
        peers=peers,
    )


def small_run() -> RunResults:
    """A validator (uid 0), honest miners 1-3 with 10/20/40 inner steps and a copycat (uid 4).

    Two windows, loss 5.58 -> 4.0 -> 3.21; incentive sampled after each window.
    After the last: honest 0.2 + 0.3 + 0.4 = 0.9 of the miners' 1.0, copycat 0.1.
    """
    results = RunResults(meta=RunMeta(scenario="mixed", seed=7, model="tiny", windows=2))
    results.add_node("validator0", 0, "validator", stake=1000.0)
    results.add_node("miner1", 1, "miner", "honest", pages=1)
    results.add_node("miner2", 2, "miner", "honest", pages=2)
    results.add_node("miner3", 3, "miner", "honest", pages=4)
    results.add_node("miner4", 4, "miner", "copycat")
    results.add_report(
        report(
            3, 5.58, 4.0, [peer(1, 0.3), peer(2, 0.3), peer(3, 0.4), peer(4, 0.0, status="copy")]
        )
    )
    results.set_incentive(3, {0: 0.0, 1: 0.25, 2: 0.25, 3: 0.25, 4: 0.25})
    results.add_report(
        report(
            4, 4.0, 3.21, [peer(1, 0.2), peer(2, 0.3), peer(3, 0.5), peer(4, 0.0, status="copy")]
        )
    )
    results.set_incentive(4, {0: 0.0, 1: 0.2, 2: 0.3, 3: 0.4, 4: 0.1})
    return results
