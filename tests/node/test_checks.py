"""The validator's per-window checks over gathered contributions (check_window)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
import torch

from gauntlet.compress.aggregate import Delta
from gauntlet.compress.codec import DenseCodec
from gauntlet.node.checks import (
    Verdict,
    check_window,
    delta_norm,
    measure_updates,
    sketch_delta,
    step_magnitudes,
)
from gauntlet.node.gather import Contribution, Decoder
from gauntlet.score.config import (
    COPY,
    DESYNCED,
    OK,
    OUTLIER,
    REPLAY,
    WRONG_PAGES,
    ScoringConfig,
)
from gauntlet.score.replay import AGGREGATE_UID, SketchEntry
from gauntlet.train.fingerprint import coordinates
from protocol.container import Limits
from protocol.schemas import ContributionManifest
from protocol.signing import keypair_from_uri

WINDOW, NETUID = 12, 1
CONFIG = ScoringConfig()
HOTKEYS = {uid: keypair_from_uri(f"//miner/{uid}").ss58_address for uid in range(10)}
# Our own θ_w at four fingerprint coordinates, and how far each moved in a typical step:
# the mean step is (0.1 + 0.2 + 0.3 + 0.4) / 4 = 0.25.
OWN_FP = [0.0, 0.0, 0.0, 0.0]
MAGNITUDES = [0.1, 0.2, 0.3, 0.4]
SHAPES = {"w": (4, 8), "b": (16,)}
DECODER = Decoder(NETUID, Limits(max_bytes=1 << 20), DenseCodec(), SHAPES, "cpu")


def assigned(uid: int, hotkey: str) -> list[int]:
    return [10 * uid, 10 * uid + 1, 10 * uid + 2]


def update(seed: int, norm: float = 1.0) -> Delta:
    """A random update of two parameters, scaled to L2 norm ``norm``."""
    g = torch.Generator().manual_seed(seed)
    delta = {"w": torch.randn(4, 8, generator=g), "b": torch.randn(16, generator=g)}
    total = math.sqrt(sum(float(t.double().pow(2).sum()) for t in delta.values()))
    return {name: t * (norm / total) for name, t in delta.items()}


def contribution(
    uid: int,
    delta: Delta,
    *,
    fingerprint: Sequence[float] = OWN_FP,
    page_ids: list[int] | None = None,
    observed_block: int = 100,
) -> Contribution:
    manifest = ContributionManifest(
        netuid=NETUID,
        window=WINDOW,
        uid=uid,
        hotkey=HOTKEYS[uid],
        model="tiny",
        fingerprint=list(fingerprint),
        page_ids=assigned(uid, HOTKEYS[uid]) if page_ids is None else page_ids,
        tensors_sha256="0" * 64,
    )
    tensors, _ = DECODER.codec.encode(delta)
    return Contribution(
        uid, HOTKEYS[uid], "ok", manifest=manifest, tensors=tensors, observed_block=observed_block
    )


def check(
    contributions: Sequence[Contribution], history: Sequence[SketchEntry] = ()
) -> dict[int, Verdict]:
    """check_window with sketches and norms of the valid contributions, as the validator does."""
    norms, sketches = measure_updates(contributions, DECODER, CONFIG)
    return check_window(
        contributions,
        window=WINDOW,
        assigned=assigned,
        own_fingerprint=OWN_FP,
        magnitudes=MAGNITUDES,
        sketches=sketches,
        norms=norms,
        history=history,
        config=CONFIG,
    )


def outcomes(verdicts: dict[int, Verdict]) -> dict[int, str]:
    return {uid: v.outcome for uid, v in verdicts.items()}


def test_independent_in_sync_updates_are_all_ok() -> None:
    verdicts = check([contribution(uid, update(uid)) for uid in range(4)])
    assert verdicts == {uid: Verdict(uid, HOTKEYS[uid], OK, 1.0) for uid in range(4)}


def test_pages_other_than_the_assignment_are_wrong_pages() -> None:
    verdicts = check(
        [
            contribution(0, update(0)),
            contribution(1, update(1), page_ids=[99, 98, 97]),
            contribution(2, update(2), page_ids=[22, 21, 20]),  # assigned, out of order
        ]
    )
    assert outcomes(verdicts) == {0: OK, 1: WRONG_PAGES, 2: WRONG_PAGES}
    assert verdicts[1].reason == "page ids differ from the assignment"
    assert verdicts[2].reason == "page ids are not the stream's first pages, in order"


def test_a_prefix_of_the_stream_is_a_valid_declaration_and_a_gap_is_not() -> None:
    """Compute is data: a miner declares the first n pages of its stream that it trained on."""
    stream = assigned(1, HOTKEYS[1])
    verdicts = check(
        [
            contribution(0, update(0)),
            contribution(1, update(1), page_ids=stream[:1]),
            contribution(2, update(2), page_ids=[assigned(2, HOTKEYS[2])[1]]),  # skips page 0
            contribution(3, update(3), page_ids=[]),
        ]
    )
    assert outcomes(verdicts) == {0: OK, 1: OK, 2: WRONG_PAGES, 3: WRONG_PAGES}
    assert verdicts[3].reason == "no pages declared"


def test_a_fingerprint_four_typical_steps_off_is_desynced() -> None:
    # Mean distance 1.0 over a mean step of 0.25: 4 windows behind, past sync_max_steps = 3.
    verdicts = check(
        [contribution(0, update(0)), contribution(1, update(1), fingerprint=[1.0, -1.0, 1.0, 1.0])]
    )
    assert verdicts[1] == Verdict(1, HOTKEYS[1], DESYNCED, 0.0, "about 4.0 windows behind")
    assert verdicts[0].outcome == OK


def test_a_fingerprint_one_step_off_is_ok_with_a_reduced_sync_score() -> None:
    # Mean distance 0.25 = one typical step: linear sync 1 - 1/3.
    verdicts = check([contribution(0, update(0), fingerprint=[0.25, -0.25, 0.25, -0.25])])
    assert verdicts[0].outcome == OK
    assert verdicts[0].sync == pytest.approx(2 / 3)


def test_an_update_twenty_times_the_median_norm_is_an_outlier() -> None:
    honest = [contribution(uid, update(uid)) for uid in range(3)]
    verdicts = check([*honest, contribution(3, update(3, norm=20.0))])
    assert outcomes(verdicts) == {0: OK, 1: OK, 2: OK, 3: OUTLIER}
    # Norms [1, 1, 1, 20]: median 1.
    assert verdicts[3].reason == "update norm 20.0x the window's median"
    assert verdicts[3].sync == 1.0


def test_a_replay_of_an_earlier_upload_names_its_source() -> None:
    old = update(7)
    history = [SketchEntry.of(WINDOW - 2, 7, sketch_delta(old, CONFIG))]
    verdicts = check(
        [contribution(uid, update(uid)) for uid in range(3)] + [contribution(3, old)], history
    )
    assert outcomes(verdicts) == {0: OK, 1: OK, 2: OK, 3: REPLAY}
    assert verdicts[3].reason == f"replays uid 7 of window {WINDOW - 2} (explains 100.0%)"


def test_a_rescaled_replay_of_the_aggregate_is_a_replay_of_the_aggregate() -> None:
    aggregate = update(9)
    history = [
        SketchEntry.of(WINDOW - 3, 5, sketch_delta(update(5), CONFIG)),
        SketchEntry.of(WINDOW - 1, AGGREGATE_UID, sketch_delta(aggregate, CONFIG)),
    ]
    resent = {name: 0.5 * t for name, t in aggregate.items()}  # same direction, half the norm
    verdicts = check([contribution(0, update(0)), contribution(1, resent)], history)
    assert outcomes(verdicts) == {0: OK, 1: REPLAY}
    assert verdicts[1].reason == f"replays the aggregate of window {WINDOW - 1} (explains 100.0%)"


def test_a_history_entry_of_this_window_is_not_a_replay() -> None:
    mine = update(0)
    history = [SketchEntry.of(WINDOW, 0, sketch_delta(mine, CONFIG))]
    assert outcomes(check([contribution(0, mine)], history)) == {0: OK}


def test_of_two_identical_updates_the_later_uploader_is_the_copy() -> None:
    shared = update(1)
    verdicts = check(
        [
            contribution(0, update(0), observed_block=50),
            # The lower uid was observed later: the observed block decides, not the uid.
            contribution(1, shared, observed_block=200),
            contribution(2, {name: t.clone() for name, t in shared.items()}, observed_block=100),
        ]
    )
    assert outcomes(verdicts) == {0: OK, 1: COPY, 2: OK}
    assert verdicts[1].reason == "copy of uid 2, observed later (explains 100.0%)"
    assert verdicts[1].sync == 1.0


def test_a_copy_reason_names_the_earliest_uploader_of_its_duplicates() -> None:
    shared = update(1)
    verdicts = check(
        [
            contribution(1, shared, observed_block=300),
            contribution(2, shared, observed_block=100),
            contribution(3, shared, observed_block=200),
        ]
    )
    assert outcomes(verdicts) == {1: COPY, 2: OK, 3: COPY}
    assert verdicts[1].reason == "copy of uid 2, observed later (explains 100.0%)"
    assert verdicts[3].reason == "copy of uid 2, observed later (explains 100.0%)"


def _mix(*parts: tuple[float, Delta]) -> Delta:
    return {name: sum(w * d[name] for w, d in parts) for name in parts[0][1]}  # type: ignore[misc]


def test_a_mix_of_earlier_uploads_and_an_aggregate_is_a_replay_naming_every_source() -> None:
    history = [
        SketchEntry.of(WINDOW - 3, 7, sketch_delta(update(7), CONFIG)),
        SketchEntry.of(WINDOW - 1, 8, sketch_delta(update(8), CONFIG)),
        SketchEntry.of(WINDOW - 1, AGGREGATE_UID, sketch_delta(update(9), CONFIG)),
        SketchEntry.of(WINDOW - 1, 5, sketch_delta(update(5), CONFIG)),
    ]
    mixed = _mix((0.6, update(7)), (0.5, update(8)), (-0.4, update(9)))
    verdicts = check([contribution(0, update(0)), contribution(1, mixed)], history)
    assert outcomes(verdicts) == {0: OK, 1: REPLAY}
    assert verdicts[1].reason == (
        f"replays uid 7 of window {WINDOW - 3} + the aggregate of window {WINDOW - 1} + uid 8 "
        f"of window {WINDOW - 1} (explains 100.0%)"
    )


def test_a_combination_of_uploads_observed_earlier_in_the_window_is_a_copy() -> None:
    a, b = update(1), update(2)
    verdicts = check(
        [
            contribution(0, update(0), observed_block=40),
            contribution(1, a, observed_block=50),
            contribution(2, b, observed_block=60),
            contribution(3, _mix((0.7, a), (0.3, b)), observed_block=100),
        ]
    )
    assert outcomes(verdicts) == {0: OK, 1: OK, 2: OK, 3: COPY}
    assert verdicts[3].reason == "copy of uid 1 + uid 2, observed later (explains 100.0%)"
    # Observed first, the combination is the original; the last of the three is the copy.
    verdicts = check(
        [
            contribution(1, a, observed_block=50),
            contribution(2, b, observed_block=60),
            contribution(3, _mix((0.7, a), (0.3, b)), observed_block=10),
        ]
    )
    assert outcomes(verdicts) == {1: OK, 2: COPY, 3: OK}
    assert verdicts[2].reason == "copy of uid 1 + uid 3, observed later (explains 100.0%)"


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("late", "3.2s after the deadline"),
        ("invalid", "hash_mismatch: data section does not match the signed tensors_sha256"),
        ("unreadable", "no valid bucket commitment"),
        ("missing", ""),
    ],
)
def test_a_gather_verdict_passes_through_with_its_reason(status: str, reason: str) -> None:
    honest = [contribution(uid, update(uid)) for uid in range(3)]
    verdicts = check([*honest, Contribution(4, HOTKEYS[4], status, reason)])
    assert verdicts[4] == Verdict(4, HOTKEYS[4], status, 1.0, reason)
    assert outcomes(verdicts) == {0: OK, 1: OK, 2: OK, 4: status}


def test_a_replay_that_is_also_a_norm_outlier_is_reported_as_outlier() -> None:
    old = update(7)
    history = [SketchEntry.of(WINDOW - 2, 7, sketch_delta(old, CONFIG))]
    replayed_big = {name: 20.0 * t for name, t in old.items()}
    verdicts = check(
        [contribution(uid, update(uid)) for uid in range(3)] + [contribution(3, replayed_big)],
        history,
    )
    assert verdicts[3].outcome == OUTLIER
    assert verdicts[3].reason == "update norm 20.0x the window's median"


def test_wrong_pages_take_precedence_over_desync() -> None:
    verdicts = check(
        [contribution(0, update(0), page_ids=[1, 2, 3], fingerprint=[9.0, 9.0, 9.0, 9.0])]
    )
    assert verdicts[0].outcome == WRONG_PAGES


def test_desync_takes_precedence_over_a_norm_outlier() -> None:
    honest = [contribution(uid, update(uid)) for uid in range(3)]
    far = contribution(3, update(3, norm=20.0), fingerprint=[9.0, 9.0, 9.0, 9.0])
    assert check([*honest, far])[3].outcome == DESYNCED


def test_only_ok_contributions_can_be_copies() -> None:
    # Two identical scaled-up updates: both are outliers, neither is blamed as a copy.
    big = update(3, norm=20.0)
    honest = [contribution(uid, update(uid)) for uid in range(3)]
    verdicts = check(
        [*honest, contribution(3, big, observed_block=1), contribution(4, big, observed_block=2)]
    )
    assert outcomes(verdicts) == {0: OK, 1: OK, 2: OK, 3: OUTLIER, 4: OUTLIER}


def test_delta_norm_is_the_l2_norm_of_every_tensor_together() -> None:
    delta = {"a": torch.tensor([3.0, 0.0]), "b": torch.tensor([[0.0], [4.0]])}
    assert delta_norm(delta) == 5.0
    assert delta_norm({}) == 0.0


def test_delta_norm_accumulates_in_float64() -> None:
    # (4e19)^2 overflows float32 (max ~3.4e38); the norm itself fits.
    delta = {"a": torch.tensor([3e19], dtype=torch.float32), "b": torch.tensor([4e19])}
    assert delta_norm(delta) == pytest.approx(5e19, rel=1e-6)


def test_step_magnitudes_are_zero_before_any_outer_step() -> None:
    assert step_magnitudes(None, WINDOW, [("w", 32), ("b", 16)], 5, lr=0.7) == [0.0] * 5


def test_step_magnitudes_are_lr_times_the_last_step_at_the_fingerprint_coordinates() -> None:
    # Each value encodes its own position and is negative, so the index and the abs are checked.
    last_step = {
        "w": -torch.arange(1.0, 33.0).reshape(4, 8),  # w[i] = -(i + 1)
        "b": -torch.arange(101.0, 117.0),  # b[i] = -(101 + i)
    }
    sizes = [("w", 32), ("b", 16)]
    got = step_magnitudes(last_step, WINDOW, sizes, 6, lr=0.5)
    first = {"w": 1.0, "b": 101.0}
    expected = [0.5 * (first[name] + index) for name, index in coordinates(WINDOW, sizes, 6)]
    assert got == pytest.approx(expected)
    assert len(got) == 6
    assert all(m > 0 for m in got)


def test_sketch_delta_of_every_coordinate_is_the_sketch_of_the_flat_update() -> None:
    from gauntlet.score.replay import sketch

    torch.manual_seed(0)
    delta = {"b": torch.randn(5, 7), "a": torch.randn(300)}
    flat = torch.cat([delta["a"].reshape(-1), delta["b"].reshape(-1)]).double().numpy()
    config = ScoringConfig(sketch_coordinates=0)
    expected = sketch(flat, config.sketch_dim, config.sketch_seed.encode())
    assert np.allclose(sketch_delta(delta, config), expected)
    assert np.allclose(sketch_delta(delta, ScoringConfig(sketch_coordinates=10_000)), expected)


def test_sketch_delta_samples_every_kth_coordinate_of_a_large_update() -> None:
    config = ScoringConfig(sketch_coordinates=100)  # 1000 coordinates -> every 10th
    zeros_on_sample = {"a": torch.ones(400), "b": torch.ones(600)}
    for part in zeros_on_sample.values():
        part[::10] = 0.0  # "a" starts at 0 and "b" at 400: both multiples of 10
    assert not sketch_delta(zeros_on_sample, config).any()  # only sampled values count
    torch.manual_seed(1)
    update = {"a": torch.randn(400), "b": torch.randn(600)}
    copy = {k: v.clone() * 3.0 for k, v in update.items()}
    other = {k: torch.randn_like(v) for k, v in update.items()}
    s, c, o = (sketch_delta(d, config) for d in (update, copy, other))
    assert float(s @ c / np.linalg.norm(s) / np.linalg.norm(c)) == pytest.approx(1.0)
    assert abs(float(s @ o / np.linalg.norm(s) / np.linalg.norm(o))) < 0.5


def test_sybils_with_garbage_fingerprints_cannot_move_the_norm_median() -> None:
    """Four honest updates (norm 1) and five tiny sybil uploads out of sync: the honest ones
    are not outliers, because the median is taken only over in-sync contributions."""
    honest = [contribution(uid, update(uid, 1.0)) for uid in range(4)]
    sybils = [
        contribution(uid, update(uid, 0.01), fingerprint=[9.0, -9.0, 9.0, 9.0])
        for uid in range(4, 9)
    ]
    verdicts = check([*honest, *sybils])
    assert [verdicts[uid].outcome for uid in range(4)] == [OK] * 4
    assert {verdicts[uid].outcome for uid in range(4, 9)} == {DESYNCED}


def test_a_parameter_between_two_sketched_coordinates_is_skipped_not_a_crash() -> None:
    """The sketch reads every ``stride``-th coordinate of the flattened update; a parameter
    smaller than the stride can hold none of them (an 8B model's 4096-entry norm weights
    under a stride of about 7,600). It adds nothing to the sketch: before, its empty range
    raised, and with it the checks of every contribution."""
    from gauntlet.score.replay import sketch_at

    config = ScoringConfig(sketch_coordinates=10)
    delta = {name: torch.randn(size) for name, size in (("a", 1000), ("b", 3), ("c", 1000))}
    stride = -(-2003 // 10)  # 201: "b" spans 1000-1002, between the sampled 804 and 1005
    flat = torch.cat([delta[name] for name in ("a", "b", "c")]).double().numpy()
    positions = np.arange(0, 2003, stride, dtype=np.uint64)
    seed = config.sketch_seed.encode()
    expected = sketch_at(flat[positions.astype(np.int64)], positions, config.sketch_dim, seed)
    assert np.allclose(sketch_delta(delta, config), expected, rtol=1e-12, atol=0)
