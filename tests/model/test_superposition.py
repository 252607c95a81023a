"""Token-Superposition Training: the bagged input, the multi-hot loss, the phase plan."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from torch import nn

from gauntlet.config import GauntletConfig
from gauntlet.model import build_model, causal_lm_loss, superposition_loss
from gauntlet.train.objective import Objective, objective_at, training_plan
from protocol.plan import PLAIN, Phase, TrainingPlan, superposition_plan


def test_a_bagged_position_is_the_mean_of_its_token_embeddings() -> None:
    model = build_model("tiny", seed=0)
    tokens = torch.randint(0, model.args.vocab_size, (2, 12))
    bagged = model.embed(tokens, bag=3)
    assert bagged.shape == (2, 4, model.args.dim)
    table = model.tok_embeddings.weight
    for b in range(2):
        for t in range(4):
            expected = table[tokens[b, 3 * t : 3 * t + 3]].mean(dim=0)
            torch.testing.assert_close(bagged[b, t], expected)
    torch.testing.assert_close(model.embed(tokens, bag=1), model.tok_embeddings(tokens))
    with pytest.raises(ValueError, match="bags of 5"):
        model.embed(tokens, bag=5)


class FixedLogits(nn.Module):
    """Logits given by hand; records the bagged input it was asked about."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits
        self.seen: tuple[torch.Tensor, int] | None = None

    def forward(self, tokens: torch.Tensor, bag: int = 1) -> torch.Tensor:
        self.seen = (tokens, bag)
        return self.logits


def test_the_multi_hot_loss_is_the_mean_of_the_next_bags_cross_entropies() -> None:
    # vocab 4, bag 2, one sequence of 3 bags: positions 0 and 1 predict bags 1 and 2.
    tokens = torch.tensor([[0, 1, 2, 3, 3, 0]])
    logits = torch.tensor([[[2.0, 0.0, 1.0, -1.0], [0.5, 0.5, 0.0, 3.0]]])
    model = FixedLogits(logits)
    loss = superposition_loss(model, tokens, bag=2)
    assert model.seen is not None
    inputs, bag = model.seen
    assert bag == 2 and inputs.tolist() == [[0, 1, 2, 3]]  # the last bag is only a target

    def ce(row: list[float], target: int) -> float:
        return -(row[target] - math.log(sum(math.exp(v) for v in row)))

    rows = logits[0].tolist()
    by_hand = (ce(rows[0], 2) + ce(rows[0], 3) + ce(rows[1], 3) + ce(rows[1], 0)) / 4
    assert loss.item() == pytest.approx(by_hand, rel=1e-6)
    # the mean over the bag of s plain cross-entropies, each with its own target
    per_token = [
        F.cross_entropy(logits[0], torch.tensor([2, 3])),
        F.cross_entropy(logits[0], torch.tensor([3, 0])),
    ]
    assert loss.item() == pytest.approx(float(sum(per_token)) / 2, rel=1e-6)


def test_bag_one_is_plain_next_token_training() -> None:
    model = build_model("tiny", seed=0)
    tokens = torch.randint(0, model.args.vocab_size, (2, 17))
    torch.testing.assert_close(superposition_loss(model, tokens, 1), causal_lm_loss(model, tokens))
    with pytest.raises(ValueError, match="bag"):
        superposition_loss(model, tokens, 4)  # 17 tokens are not whole bags


def test_training_in_superposition_lowers_the_superposition_loss() -> None:
    torch.manual_seed(0)
    model = build_model("tiny", seed=0)
    pattern = torch.arange(40) % 8  # a periodic stream: learnable in a few steps
    tokens = pattern.repeat(4, 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = superposition_loss(model, tokens, 4).item()
    for _ in range(30):
        loss = superposition_loss(model, tokens, 4)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < first - 1.0, (first, loss.item())


def test_the_phase_in_force_is_a_function_of_the_window_alone() -> None:
    plan = superposition_plan(bag=4, until_window=6)
    assert [plan.phase_at(w).bag for w in range(9)] == [4] * 6 + [1] * 3
    # two nodes configured independently (flags vs a config mapping) agree bit for bit
    a = GauntletConfig.model_validate({"train": {"superposition_bag": 4, "superposition_until": 6}})
    b = GauntletConfig().model_copy(
        update={
            "train": GauntletConfig().train.model_copy(
                update={"superposition_bag": 4, "superposition_until": 6}
            )
        }
    )
    assert training_plan(a.train).sha256 == training_plan(b.train).sha256 == plan.sha256
    assert [objective_at(a.train, w) for w in range(9)] == [Objective(4)] * 6 + [Objective(1)] * 3
    assert training_plan(GauntletConfig().train) == PLAIN  # default: no superposition phase
    assert superposition_plan(4, 7).sha256 != plan.sha256 != superposition_plan(2, 6).sha256
    assert superposition_plan(1, 6) == superposition_plan(4, 0) == PLAIN


def test_a_plan_must_start_at_window_zero_with_phases_in_order() -> None:
    with pytest.raises(ValidationError, match="window 0"):
        TrainingPlan(phases=[Phase(start_window=3, bag=4)])
    with pytest.raises(ValidationError, match="increasing"):
        TrainingPlan(phases=[Phase(start_window=0, bag=4), Phase(start_window=0, bag=1)])
    with pytest.raises(ValidationError):
        Phase(start_window=0, bag=0)


def test_the_objective_cuts_longer_sequences_and_longer_page_streams() -> None:
    tst = Objective(bag=4)
    assert tst.data_seq_len(128) == 129 * 4 - 1  # batches are [B, seq_len + 1]: 129 bags
    assert tst.pages(2) == 8 and Objective().pages(2) == 2
    assert Objective().data_seq_len(128) == 128
