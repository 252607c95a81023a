"""Attribution is arithmetic that adds up: shares sum to 1 per window, per-hotkey credit sums
to the attributed improvement, and attributed plus unattributed is the whole improvement."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ledger_helpers import MINERS, LedgerRun

from gauntlet.compress.aggregate import peer_shares
from gauntlet.ledger.attribution import attribute, normalised_shares
from protocol.schemas import AggregatedContribution, AggregationRecord


def test_the_built_ledger_is_credited_as_planned(tmp_path: Path) -> None:
    run = LedgerRun(tmp_path).build()
    att = attribute([run.records[w] for w in (0, 1, 2, 4, 5)])
    assert [w.improvement for w in att.windows] == pytest.approx([1.0, -0.1, 1.1, -0.5, None])
    assert att.pending_window == 5 and att.windows[-1].credits[0].credit is None
    by_hotkey = {t.hotkey: t.improvement for t in att.hotkeys}
    assert by_hotkey == pytest.approx(
        {MINERS[0]: 0.775, MINERS[1]: 0.775, MINERS[2]: 0.25, MINERS[3]: -0.2}
    )
    assert att.attributed_improvement == pytest.approx(1.6)
    assert att.unattributed_improvement == pytest.approx(-0.1)  # the empty window 1
    assert att.total_improvement == pytest.approx(1.5)
    miner0 = next(t for t in att.hotkeys if t.hotkey == MINERS[0])
    assert [c.window for c in miner0.credits] == [0, 2] and [c.window for c in miner0.pending] == [
        5
    ]
    assert miner0.share_total == pytest.approx(0.75)
    assert next(t for t in att.hotkeys if t.hotkey == MINERS[3]).improvement < 0  # window 4 cost


def _record(window: int, loss: float, shares: list[float]) -> AggregationRecord:
    total = sum(shares)
    return AggregationRecord(
        netuid=1, window=window, hotkey="lead", peer_set_window=0, fingerprint=[],
        contributions=[
            AggregatedContribution(uid=i, hotkey=f"miner{i}", sha256="0" * 64, share=s / total)
            for i, s in enumerate(shares)
        ],
        model_sha256="0" * 64, validation_loss=loss,
    )  # fmt: skip


windows = st.lists(
    st.tuples(
        st.floats(0.5, 10.0),
        st.lists(st.floats(0.01, 100.0), min_size=0, max_size=6),
    ),
    min_size=1,
    max_size=12,
)


@given(windows)
def test_credit_always_sums_to_the_improvement(plan: list[tuple[float, list[float]]]) -> None:
    records = [_record(w, loss, shares) for w, (loss, shares) in enumerate(plan)]
    att = attribute(records)
    for line in att.windows:
        if line.credits:
            assert math.fsum(c.share for c in line.credits) == pytest.approx(1.0, abs=1e-12)
    credited = math.fsum(t.improvement for t in att.hotkeys)
    assert credited == pytest.approx(att.attributed_improvement, abs=1e-9)
    assert att.attributed_improvement + att.unattributed_improvement == pytest.approx(
        att.total_improvement, abs=1e-9
    )
    assert att.total_improvement == pytest.approx(plan[0][0] - plan[-1][0], abs=1e-12)


def test_normalised_shares_of_an_empty_record() -> None:
    assert normalised_shares(_record(0, 1.0, [])) == []


@pytest.mark.parametrize(
    ("mode", "norms", "expected"),
    [
        ("per_peer", [1.0, 2.0, 4.0], [1 / 3, 1 / 3, 1 / 3]),  # every update enters at one norm
        ("per_peer", [0.0, 2.0, 2.0], [0.0, 0.5, 0.5]),  # a zero update adds nothing
        ("none", [1.0, 3.0], [0.25, 0.75]),
        ("clip", [0.5, 2.0, 4.0], [0.2, 0.4, 0.4]),  # clip_norm 1.0: 0.5, 1, 1
        ("per_peer", [0.0, 0.0], [0.5, 0.5]),  # no norm at all: equal
        ("none", [1e308, 1e308], [0.5, 0.5]),  # no overflow
    ],
)
def test_peer_shares_follow_the_normalisation(mode, norms, expected) -> None:
    shares = peer_shares(norms, mode, 1.0)
    assert shares == pytest.approx(expected)
    assert math.fsum(shares) == pytest.approx(1.0)
