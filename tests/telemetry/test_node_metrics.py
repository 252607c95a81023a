"""The metrics module: names, values, and a valid Prometheus text exposition."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from telemetry_helpers import peer, report

from gauntlet.telemetry import NodeMetrics


@pytest.fixture
def metrics() -> NodeMetrics:
    return NodeMetrics(CollectorRegistry())


def value(metrics: NodeMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def families(metrics: NodeMetrics) -> dict[str, str]:
    text = generate_latest(metrics.registry).decode()
    return {f.name: f.type for f in text_string_to_metric_families(text)}


def test_every_metric_is_named_gauntlet_and_the_exposition_parses(metrics: NodeMetrics) -> None:
    metrics.set_node("miner", 3, "5Hot")
    metrics.window.set(7)
    found = families(metrics)
    assert found and all(name.startswith("gauntlet_") for name in found)
    assert found["gauntlet_window"] == "gauge"
    assert found["gauntlet_errors"] == "counter"
    assert found["gauntlet_upload_seconds"] == "histogram"


def test_counters_export_no_created_series(metrics: NodeMetrics) -> None:
    metrics.error("chain_unavailable")
    assert "_created" not in generate_latest(metrics.registry).decode()


def test_node_info_names_role_uid_hotkey_and_version(metrics: NodeMetrics) -> None:
    metrics.set_node("validator", 0, "5Val")
    text = generate_latest(metrics.registry).decode()
    assert 'gauntlet_node_info{hotkey="5Val",role="validator",uid="0",version="' in text


def test_training_sets_first_and_last_loss_throughput_and_counts(metrics: NodeMetrics) -> None:
    metrics.observe_training([5.5, 5.0, 4.5], tokens=3000, seconds=2.0)
    metrics.observe_training([4.4, 4.0], tokens=1000, seconds=0.5)
    assert value(metrics, "gauntlet_train_loss", step="first") == 4.4
    assert value(metrics, "gauntlet_train_loss", step="last") == 4.0
    assert value(metrics, "gauntlet_train_tokens_per_second") == 2000.0
    assert value(metrics, "gauntlet_train_tokens_total") == 4000
    assert value(metrics, "gauntlet_train_steps_total") == 5


def test_a_nonfinite_loss_is_exported_as_nan(metrics: NodeMetrics) -> None:
    metrics.observe_training([math.nan], tokens=10, seconds=1.0)
    assert math.isnan(value(metrics, "gauntlet_train_loss", step="last") or 0.0)
    assert "gauntlet_train_loss" in families(metrics)


def test_a_report_sets_losses_peer_counts_and_per_uid_gauges(metrics: NodeMetrics) -> None:
    metrics.observe_report(
        report(
            4,
            peer(1, score=0.5, weight=0.75, evaluated=True, rating=1.5, sync=1.0),
            peer(2, score=0.2, weight=0.25, status="copy"),
            peer(3, status="missing"),
            before=5.0,
            after=4.8,
        )
    )
    assert value(metrics, "gauntlet_validation_loss", stage="before") == 5.0
    assert value(metrics, "gauntlet_validation_loss", stage="after") == 4.8
    counts = {
        s: value(metrics, "gauntlet_peers", state=s)
        for s in ("registered", "live", "ok", "evaluated")
    }
    assert counts == {"registered": 3, "live": 2, "ok": 1, "evaluated": 1}
    assert value(metrics, "gauntlet_peer_score", uid="1") == 0.5
    assert value(metrics, "gauntlet_peer_weight", uid="2") == 0.25
    assert value(metrics, "gauntlet_peer_rating", uid="1") == 1.5
    assert value(metrics, "gauntlet_peer_rating", uid="2") is None  # never rated: not exported
    assert value(metrics, "gauntlet_peer_outcomes_total", outcome="copy") == 1


def test_a_uid_missing_from_the_next_report_is_no_longer_exported(metrics: NodeMetrics) -> None:
    metrics.observe_report(report(1, peer(1, score=0.1), peer(2, score=0.2)))
    metrics.observe_report(report(2, peer(1, score=0.3)))
    assert value(metrics, "gauntlet_peer_score", uid="1") == 0.3
    assert value(metrics, "gauntlet_peer_score", uid="2") is None
    assert value(metrics, "gauntlet_peer_outcomes_total", outcome="ok") == 3


def test_an_upload_records_bytes_and_latency(metrics: NodeMetrics) -> None:
    with metrics.upload("contribution", 1234):
        pass
    assert value(metrics, "gauntlet_upload_bytes_total", artifact="contribution") == 1234
    assert value(metrics, "gauntlet_upload_seconds_count", artifact="contribution") == 1


def test_a_failed_upload_raises_through_and_records_nothing(metrics: NodeMetrics) -> None:
    with pytest.raises(OSError), metrics.upload("report", 99):
        raise OSError("disk full")
    assert value(metrics, "gauntlet_upload_bytes_total", artifact="report") is None


def test_a_download_records_the_size_the_body_reports(metrics: NodeMetrics) -> None:
    with metrics.download("contribution") as transfer:
        transfer.nbytes = 512
    with metrics.download("contribution") as transfer:
        transfer.nbytes = 256
    assert value(metrics, "gauntlet_download_bytes_total", artifact="contribution") == 768
    assert value(metrics, "gauntlet_download_seconds_count", artifact="contribution") == 2


def test_errors_are_counted_by_kind(metrics: NodeMetrics) -> None:
    metrics.error("chain_unavailable")
    metrics.error("chain_unavailable")
    metrics.error("store_throttled")
    assert value(metrics, "gauntlet_errors_total", kind="chain_unavailable") == 2
    assert value(metrics, "gauntlet_errors_total", kind="store_throttled") == 1


def test_every_metric_is_documented(metrics: NodeMetrics) -> None:
    docs = (Path(__file__).parents[2] / "docs" / "metrics.md").read_text()
    for family in metrics.registry.collect():
        assert f"`{family.name}`" in docs, family.name
