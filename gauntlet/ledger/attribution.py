"""Who built the model, and how much each one's contributions improved it: pure arithmetic
over a verified chain of records (oldest first).

A record of window ``w`` carries the lead's validation loss of θ_w. The next record of the
chain (window ``w' > w``) carries the loss of θ_{w'}, and θ_{w'} = θ_{w+1}: the windows in
between had no record that counted, so no node changed the model. So

    improvement(w) = loss(record w) − loss(next record)

is what window ``w``'s aggregate did to the validation loss; each contributor is credited
``share × improvement(w)`` (its share of that aggregate, normalised to sum to exactly 1).
A window that made the model worse has a negative improvement and costs its contributors
credit. The newest record's window is *pending*: the loss after it is measured only by the
record that will follow. Windows whose record names no contribution (empty records) move
the measured loss only by measurement noise or a change of lead; that part is
*unattributed*. Hence, exactly up to float rounding:

    Σ per-hotkey credit = attributed improvement
    attributed + unattributed = loss(first record) − loss(newest record)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from protocol.schemas import AggregationRecord


@dataclass(frozen=True)
class Credit:
    """One contribution of one window."""

    window: int
    uid: int
    hotkey: str
    share: float  # normalised: a window's shares sum to 1
    credit: float | None  # share × the window's improvement; None while pending


@dataclass(frozen=True)
class WindowLine:
    window: int
    lead: str
    validation_loss: float
    improvement: float | None  # None: pending (the newest record)
    credits: list[Credit]


@dataclass
class HotkeyTotal:
    hotkey: str
    uids: list[int] = field(default_factory=list)
    credits: list[Credit] = field(default_factory=list)  # attributed windows, oldest first
    pending: list[Credit] = field(default_factory=list)

    @property
    def share_total(self) -> float:
        """Its shares summed over attributed windows: how many whole aggregates it made."""
        return sum(c.share for c in self.credits)

    @property
    def improvement(self) -> float:
        return sum(c.credit or 0.0 for c in self.credits)


@dataclass(frozen=True)
class Attribution:
    windows: list[WindowLine]
    hotkeys: list[HotkeyTotal]  # largest credit first
    total_improvement: float  # loss of the first record minus loss of the newest
    attributed_improvement: float  # over windows with contributions, = Σ hotkey credit
    unattributed_improvement: float  # over windows without contributions
    pending_window: int | None


def normalised_shares(record: AggregationRecord) -> list[float]:
    """The record's shares scaled to sum to 1 exactly (they already do to 1e-6)."""
    shares = [c.share or 0.0 for c in record.contributions]
    total = sum(shares)
    if not total > 0:
        return [1.0 / len(shares)] * len(shares) if shares else []
    return [s / total for s in shares]


def _loss(record: AggregationRecord) -> float:
    if record.validation_loss is None:
        raise ValueError(f"the record of window {record.window} has no validation loss")
    return record.validation_loss


def attribute(records: Sequence[AggregationRecord]) -> Attribution:
    """Credit per window and per hotkey over ``records``, a verified chain oldest first."""
    windows: list[WindowLine] = []
    totals: dict[str, HotkeyTotal] = {}
    attributed = unattributed = 0.0
    for i, record in enumerate(records):
        following = records[i + 1] if i + 1 < len(records) else None
        improvement = None if following is None else _loss(record) - _loss(following)
        credits = [
            Credit(
                record.window,
                c.uid,
                c.hotkey,
                share,
                None if improvement is None else share * improvement,
            )
            for c, share in zip(record.contributions, normalised_shares(record), strict=True)
        ]
        if improvement is not None:
            if credits:
                attributed += improvement
            else:
                unattributed += improvement
        for credit in credits:
            total = totals.setdefault(credit.hotkey, HotkeyTotal(credit.hotkey))
            if credit.uid not in total.uids:
                total.uids.append(credit.uid)
            (total.pending if credit.credit is None else total.credits).append(credit)
        windows.append(
            WindowLine(record.window, record.hotkey, _loss(record), improvement, credits)
        )
    hotkeys = sorted(totals.values(), key=lambda t: (-t.improvement, t.hotkey))
    return Attribution(
        windows=windows,
        hotkeys=hotkeys,
        total_improvement=_loss(records[0]) - _loss(records[-1]) if records else 0.0,
        attributed_improvement=attributed,
        unattributed_improvement=unattributed,
        pending_window=records[-1].window if records else None,
    )
