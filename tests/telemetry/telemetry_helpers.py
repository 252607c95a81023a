"""Window reports for the telemetry tests, shaped like the ones a validator writes."""

from __future__ import annotations

from protocol.schemas import PeerResult, WindowReport

VALIDATOR = "5Validator" + "x" * 38


def peer(uid: int, score: float = 0.0, weight: float = 0.0, **fields) -> PeerResult:
    values = {"hotkey": f"5Miner{uid}" + "y" * 40, "status": "ok", **fields}
    return PeerResult(uid=uid, score=score, weight=weight, **values)


def report(
    window: int, *peers: PeerResult, before: float = 5.0, after: float = 4.9
) -> WindowReport:
    return WindowReport(
        window=window,
        hotkey=VALIDATOR,
        validation_loss_before=before,
        validation_loss_after=after,
        peers=list(peers),
    )
