"""What a validator measures of a contribution: at the aggregate's scale, on a secret
sample of its declared pages, with secret batches."""

from __future__ import annotations

import torch

from gauntlet.compress.aggregate import l2_norm_sq
from gauntlet.node.checks import delta_norm
from gauntlet.node.evaluation import aggregate_scales, own_batch_seed, own_sample

SECRET, OTHER = b"\x01" * 32, b"\x02" * 32


def _update(seed: int, norm: float) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    t = torch.randn(64, generator=g)
    return {"w": t * (norm / float(t.norm()))}


def _norms(deltas: dict[int, dict[str, torch.Tensor]]) -> dict[int, float]:
    return {uid: delta_norm(d) for uid, d in deltas.items()}


def test_an_update_is_measured_at_the_aggregates_scale_so_shrinking_it_gains_nothing() -> None:
    honest = {uid: _update(uid, 1.0) for uid in range(5)}
    shrunk = dict(honest) | {4: {"w": honest[4]["w"] * 0.5}}
    for deltas in (honest, shrunk):
        scales = aggregate_scales(_norms(deltas), "per_peer", None)
        measured = {uid: deltas[uid]["w"] * scales[uid] for uid in deltas}
        assert {round(l2_norm_sq(t) ** 0.5, 6) for t in measured.values()} == {1.0}
    a = honest[4]["w"] * aggregate_scales(_norms(honest), "per_peer", None)[4]
    b = shrunk[4]["w"] * aggregate_scales(_norms(shrunk), "per_peer", None)[4]
    torch.testing.assert_close(a, b)  # identical to what the aggregate applies either way


def test_the_own_page_sample_is_secret_and_drawn_from_the_declared_pages() -> None:
    declared = list(range(100, 116))
    drawn = {tuple(own_sample(SECRET, w, 3, declared, 2)) for w in range(40)}
    assert all(len(s) == 2 and set(s) <= set(declared) and list(s) == sorted(s) for s in drawn)
    assert len(drawn) > 10  # varies by window: a miner cannot know which pages are measured
    assert own_sample(SECRET, 7, 3, declared, 2) == own_sample(SECRET, 7, 3, declared, 2)
    others = [own_sample(OTHER, w, 3, declared, 2) for w in range(40)]
    assert others != [own_sample(SECRET, w, 3, declared, 2) for w in range(40)]
    assert own_sample(SECRET, 7, 3, declared[:2], 2) == declared[:2]


def test_own_batches_are_seeded_by_the_secret_not_the_window() -> None:
    seeds = {own_batch_seed(SECRET, 5, uid) for uid in range(20)}
    assert len(seeds) == 20 and 5 not in seeds
    assert own_batch_seed(SECRET, 5, 1) != own_batch_seed(OTHER, 5, 1)


def test_the_standard_error_of_an_improvement_is_over_paired_batches() -> None:
    from gauntlet.node.evaluation import paired_standard_error

    before, after = [4.0, 4.2, 3.8, 4.1], [3.9, 4.0, 3.75, 3.95]
    diffs = [0.1, 0.2, 0.05, 0.15]
    mean = sum(diffs) / 4
    expected = (sum((d - mean) ** 2 for d in diffs) / 3 / 4) ** 0.5
    assert abs(paired_standard_error(before, after) - expected) < 1e-12
    # A constant shift of every batch is measured exactly, however noisy the batches are.
    assert paired_standard_error([1.0, 9.0, 5.0], [0.5, 8.5, 4.5]) == 0.0
    assert paired_standard_error([1.0], [0.5]) == 0.0


def test_a_relative_standard_error_is_divided_by_the_loss_before() -> None:
    from gauntlet.score.loss import Evaluation

    ev = Evaluation(4.0, 3.8, 5.0, 4.9, own_se=0.04, random_se=0.05)
    assert ev.standard_error(own=True, relative=False) == 0.04
    assert ev.standard_error(own=True, relative=True) == 0.01
    assert ev.standard_error(own=False, relative=True) == 0.01
