"""A validator's public account of one window (protocol/SPEC.md 8.5), built from its
verdicts, evaluations and scoring state: what the report, the journal and the status page
show, and what `gauntlet status` reads back."""

from __future__ import annotations

from gauntlet.node.checks import Verdict
from gauntlet.score.config import ScoringConfig
from gauntlet.score.loss import Evaluation
from gauntlet.score.state import ValidatorScores
from gauntlet.score.window import NO_FINGERPRINT
from protocol.schemas import PeerResult, WindowReport


def window_report(
    window: int,
    hotkey: str,
    bag: int,
    verdicts: dict[int, Verdict],
    evaluations: dict[int, Evaluation],
    state: ValidatorScores,
    cfg: ScoringConfig,
    validation: tuple[float, float],
    phase: tuple[float | None, float | None] = (None, None),
) -> WindowReport:
    """The report of ``window`` by validator ``hotkey``, after its state advanced;
    ``validation`` is the next-token validation loss before and after the outer step,
    ``phase`` the superposition phase's loss (None outside one)."""
    weights = state.weights(cfg.weight_power)
    peers = []
    for uid, v in sorted(verdicts.items()):
        peer, ev = state.peers.get(uid), evaluations.get(uid)
        peers.append(
            PeerResult(
                uid=uid,
                hotkey=v.hotkey,
                status=v.outcome,
                reason=v.reason[:256],
                **(measured(ev, cfg) if ev else {}),
                sync_observed=None if v.outcome in NO_FINGERPRINT else v.sync,
                sync=peer.sync if peer else None,
                uniqueness=peer.uniqueness if peer else None,
                rating=peer.rating.ordinal(cfg.ordinal_z) if peer else None,
                score=peer.score if peer else 0.0,
                weight=weights.get(uid, 0.0),
            )
        )
    return WindowReport(
        window=window,
        hotkey=hotkey,
        bag=bag,
        validation_loss_before=validation[0],
        validation_loss_after=validation[1],
        phase_loss_before=phase[0],
        phase_loss_after=phase[1],
        peers=peers,
    )


def measured(ev: Evaluation, cfg: ScoringConfig) -> dict[str, float | int | bool | None]:
    """A window report's measurement fields for one evaluated peer."""
    penalty, relative = cfg.nonfinite_loss_penalty, cfg.relative_improvement
    own = ev.own_improvement(nonfinite_penalty=penalty, relative=relative)
    rand = ev.random_improvement(nonfinite_penalty=penalty, relative=relative)
    return {
        "evaluated": True,
        "declared_pages": ev.declared_pages,
        "loss_before": ev.own_before,
        "loss_after": ev.own_after,
        "own_improvement": own,
        "random_improvement": rand,
        "own_improvement_se": ev.standard_error(own=True, relative=relative),
        "random_improvement_se": ev.standard_error(own=False, relative=relative),
        "own_advantage": ev.own_advantage(nonfinite_penalty=penalty, relative=relative),
        "own_advantage_se": ev.advantage_standard_error(relative=relative),
    }
