"""A miner warns, every window, while validators report it unreadable or invalid."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
from node_helpers import ScriptedChain, make_miner

from gauntlet.node.feedback import check_feedback
from gauntlet.telemetry import METRICS
from protocol.keys import window_report_key
from protocol.schemas import PeerResult, WindowReport


def _report(validator: str, window: int, uid: int, hotkey: str, status: str, reason: str) -> bytes:
    report = WindowReport(
        window=window, hotkey=validator, validation_loss_before=4.0, validation_loss_after=3.9,
        peers=[PeerResult(uid=uid, hotkey=hotkey, status=status, reason=reason)],
    )  # fmt: skip
    return report.model_dump_json().encode()


def test_a_miner_scored_unreadable_logs_a_warning_with_the_reason_and_a_metric(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    me, first, second = (
        make_miner(tmp_path, 3),
        make_miner(tmp_path, 0, "val"),
        make_miner(tmp_path, 1, "val"),
    )
    chain = ScriptedChain(
        neurons=[first.neuron(1000.0, True), second.neuron(500.0, True), me.neuron()]
    )
    stores = {first.hotkey: first.store, second.hotkey: second.store}
    rt = SimpleNamespace(
        chain=chain,
        uid=me.uid,
        peers=SimpleNamespace(store_for=lambda hotkey, raw: stores.get(hotkey)),
    )
    asyncio.run(
        first.store.put(
            window_report_key(7, first.hotkey),
            _report(
                first.hotkey, 7, me.uid, me.hotkey, "unreadable", "its store answers forbidden"
            ),
        )
    )  # the second validator has not published window 7: nothing to say
    with caplog.at_level(logging.WARNING):
        counts = asyncio.run(check_feedback(rt, 7))  # type: ignore[arg-type]
    assert counts == {"unreadable": 1, "invalid": 0}
    assert "scores this miner unreadable: its store answers forbidden" in caplog.text
    assert METRICS.reported_fault.labels("unreadable")._value.get() == 1  # type: ignore[attr-defined]

    asyncio.run(
        first.store.put(
            window_report_key(8, first.hotkey),
            _report(first.hotkey, 8, me.uid, me.hotkey, "ok", ""),
        )
    )
    assert asyncio.run(check_feedback(rt, 8)) == {"unreadable": 0, "invalid": 0}  # type: ignore[arg-type]
    assert METRICS.reported_fault.labels("unreadable")._value.get() == 0  # type: ignore[attr-defined]
