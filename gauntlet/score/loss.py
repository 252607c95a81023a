"""Loss-evaluation bookkeeping: improvements from before/after losses, NaN-safe."""

from __future__ import annotations

import math
from dataclasses import dataclass


def improvement(
    before: float, after: float, *, nonfinite_penalty: float = 1.0, relative: bool = False
) -> float:
    """How much applying one contribution alone lowered the loss; always finite.

    ``before``/``after``: mean cross-entropy in nats/token on the same pages.
    Returns ``before - after`` (``relative=False``, nats/token) or
    ``(before - after) / before`` (``relative=True``, a fraction; ``before`` must
    then be > 0). Positive means the contribution helped.

    Non-finite losses never raise: a non-finite ``after`` (the contribution blew
    the model up) is the peer's fault and returns ``-nonfinite_penalty``; a
    non-finite or non-positive-when-relative ``before`` is the validator's own
    measurement failing, which says nothing about the peer, and returns 0.0.
    """
    if not math.isfinite(before) or (relative and before <= 0):
        return 0.0
    if not math.isfinite(after):
        return -nonfinite_penalty
    delta = before - after
    return delta / before if relative else delta


@dataclass(frozen=True)
class Evaluation:
    """One evaluated contribution: losses (nats/token) before/after, on its own and random pages."""

    own_before: float
    own_after: float
    random_before: float
    random_after: float
    declared_pages: int = 1  # pages the miner declared (its own pages were sampled from them)
    own_se: float = 0.0  # standard error of own_before - own_after over paired batches
    random_se: float = 0.0  # the same for the random pages
    # Own pages after the other helpful updates' mean instead of this one (None: no other
    # update of the window helped): the control of the own-page advantage.
    control_after: float | None = None
    control_se: float = 0.0  # standard error of control_after - own_after (paired batches)

    def own_improvement(self, *, nonfinite_penalty: float = 1.0, relative: bool = False) -> float:
        """:func:`improvement` on the peer's assigned pages."""
        return improvement(
            self.own_before, self.own_after, nonfinite_penalty=nonfinite_penalty, relative=relative
        )

    def random_improvement(
        self, *, nonfinite_penalty: float = 1.0, relative: bool = False
    ) -> float:
        """:func:`improvement` on the validator's secret random pages (the rating match score)."""
        return improvement(
            self.random_before,
            self.random_after,
            nonfinite_penalty=nonfinite_penalty,
            relative=relative,
        )

    def own_advantage(
        self, *, nonfinite_penalty: float = 1.0, relative: bool = False
    ) -> float | None:
        """How much more this update lowered the loss on its own pages than the window's
        other helpful updates did on the same batches (``control_after - own_after``, over
        ``own_before`` when ``relative``): what it learned from those pages. None when there
        was no control (no other helpful update) or the control's own loss is not finite
        (the validator's measurement, not the peer's fault). A non-finite loss after this
        update is its fault: ``-nonfinite_penalty``."""
        if self.control_after is None or not math.isfinite(self.control_after):
            return None
        if relative and not (math.isfinite(self.own_before) and self.own_before > 0):
            return None
        if not math.isfinite(self.own_after):
            return -nonfinite_penalty
        delta = self.control_after - self.own_after
        return delta / self.own_before if relative else delta

    def advantage_standard_error(self, *, relative: bool = False) -> float:
        """Standard error of :meth:`own_advantage`, in its units."""
        if not relative:
            return self.control_se
        ok = math.isfinite(self.own_before) and self.own_before > 0
        return self.control_se / self.own_before if ok else 0.0

    def standard_error(self, *, own: bool, relative: bool = False) -> float:
        """Standard error of the own (or random) improvement, in its units: over the paired
        batches of the measurement, divided by the loss before when ``relative``."""
        se, before = (self.own_se, self.own_before) if own else (self.random_se, self.random_before)
        if not relative:
            return se
        return se / before if math.isfinite(before) and before > 0 else 0.0


def passes_member_check(
    evaluation: Evaluation, *, nonfinite_penalty: float = 1.0, relative: bool = True
) -> bool:
    """The lead's loss check on a peer-set member before its update enters the aggregate:
    applied alone (at the aggregate's scale) it must lower the loss on the miner's own
    pages, and must not raise the loss on secret random pages by more than it lowered its
    own. An honest update passes both (it trained on those pages); a sign-flipped or
    noise update fails the first; one fitted to its own pages at the cost of everything
    else fails the second."""
    own = evaluation.own_improvement(nonfinite_penalty=nonfinite_penalty, relative=relative)
    rand = evaluation.random_improvement(nonfinite_penalty=nonfinite_penalty, relative=relative)
    return own > 0 and rand > -own
