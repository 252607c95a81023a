"""The training objective in force in a window, from the network's training plan.

Miners train it, validators measure contributions with it: both ask :func:`objective_at`
with the window, so they agree without talking (protocol/plan.py). In the superposition
phase a sequence of ``seq_len`` positions holds ``bag`` times as many tokens and a miner's
page stream is ``bag`` times longer: the same compute covers ``bag`` times the data, which
is the point of token superposition.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gauntlet.config.schema import TrainConfig
from gauntlet.model import superposition_loss
from protocol.plan import TrainingPlan, superposition_plan


@dataclass(frozen=True)
class Objective:
    bag: int = 1  # tokens per input position (1: plain next-token training)

    @property
    def superposition(self) -> bool:
        return self.bag > 1

    def data_seq_len(self, positions: int) -> int:
        """The ``seq_len`` to cut from pages (batches are [B, seq_len + 1] tokens) for
        ``positions`` model positions: (positions + 1) bags of ``bag`` tokens."""
        return (positions + 1) * self.bag - 1

    def loss(self, model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
        return superposition_loss(model, tokens, self.bag)

    def pages(self, pages: int) -> int:
        """Pages for the compute of ``pages`` plain pages: a page is ``bag`` times cheaper."""
        return pages * self.bag


PLAIN_OBJECTIVE = Objective()


def training_plan(train: TrainConfig) -> TrainingPlan:
    """The network's plan as this node is configured (its digest is checked by peers)."""
    return superposition_plan(train.superposition_bag, train.superposition_until)


def objective_at(train: TrainConfig, window: int) -> Objective:
    return Objective(bag=training_plan(train).phase_at(window).bag)
