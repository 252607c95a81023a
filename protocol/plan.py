"""The network's training plan: which objective is trained in which window.

Token-Superposition Training (TST, Peng, Gigant and Quesnelle 2026) only works network
wide: validators score the loss miners train, so a lone miner training another objective
looks bad. So the objective is part of the network's configuration, like the model and
the codec: a plan of phases, each from a start window on, and every node derives the
phase in force from the window number alone. The plan's digest travels in every
contribution's signed manifest; a validator whose plan differs refuses the contribution
(``invalid``, naming both digests), so a misconfigured node is found at its first upload.

A phase with ``bag`` s > 1 is the superposition phase: each input position is the mean
embedding of s consecutive tokens and predicts the next s tokens (the mean of their
cross-entropies); ``bag`` 1 is plain next-token training.
"""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_BAG = 64  # the paper's largest reported s is 16; beyond this a position means little


class Phase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    start_window: int = Field(ge=0, description="first window of the phase")
    bag: int = Field(ge=1, le=MAX_BAG, description="tokens per input position (1: plain)")

    @property
    def superposition(self) -> bool:
        return self.bag > 1


class TrainingPlan(BaseModel):
    """Phases in window order; the first starts at window 0 and each lasts until the next."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(1, ge=1, le=1)
    phases: list[Phase] = Field(min_length=1, max_length=16)

    @model_validator(mode="after")
    def _ordered(self) -> TrainingPlan:
        starts = [p.start_window for p in self.phases]
        if starts[0] != 0:
            raise ValueError("the first phase starts at window 0")
        if any(b <= a for a, b in zip(starts, starts[1:], strict=False)):
            raise ValueError("phases start in strictly increasing windows")
        return self

    def phase_at(self, window: int) -> Phase:
        """The phase in force in ``window``: a function of the window alone."""
        current = self.phases[0]
        for phase in self.phases:
            if phase.start_window <= window:
                current = phase
        return current

    @property
    def sha256(self) -> str:
        """Digest of the canonical JSON (sorted keys, no spaces): equal plans, equal digests."""
        body = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(body.encode()).hexdigest()


PLAIN = TrainingPlan(phases=[Phase(start_window=0, bag=1)])


def superposition_plan(bag: int, until_window: int) -> TrainingPlan:
    """TST as the paper runs it: bags of ``bag`` tokens in windows before ``until_window``,
    plain next-token training from then on (the same model, nothing reset). ``bag`` 1 or
    ``until_window`` 0: the plain plan."""
    if bag == 1 or until_window == 0:
        return PLAIN
    return TrainingPlan(
        phases=[Phase(start_window=0, bag=bag), Phase(start_window=until_window, bag=1)]
    )
