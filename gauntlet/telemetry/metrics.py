"""The node's Prometheus metrics: named objects that the window loops update.

One set per process, :data:`METRICS`, lives on prometheus_client's default
registry (which also carries its ``process_*`` and ``python_*`` collectors).
Tests build their own :class:`NodeMetrics` on a fresh registry. Every name and
label is listed in docs/metrics.md; keep the two in step.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)

from gauntlet import __version__
from protocol.schemas import WindowReport

# Without this every counter and histogram also exports a `_created` timestamp series.
disable_created_metrics()

# Seconds: object stores answer in milliseconds locally and in minutes for big checkpoints.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

# Validator report statuses that mean the fast filter let the contribution through.
_FAST_FILTER_FAILURES = frozenset({"missing", "late", "invalid", "unreadable"})


@dataclass
class Transfer:
    """Filled in by the caller inside :meth:`NodeMetrics.download` once the size is known."""

    nbytes: int = 0


class NodeMetrics:
    """Every metric a miner or validator exports; names start with ``gauntlet_``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

        def gauge(name: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
            return Gauge(name, doc, labels, registry=registry)

        def counter(name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
            return Counter(name, doc, labels, registry=registry)

        def histogram(name: str, doc: str, labels: Sequence[str]) -> Histogram:
            return Histogram(name, doc, labels, registry=registry, buckets=LATENCY_BUCKETS)

        self.node_info = gauge(
            "gauntlet_node_info",
            "Always 1; labels name this node",
            ["role", "uid", "hotkey", "version"],
        )
        self.window = gauge("gauntlet_window", "Window the node is working on")
        self.train_loss = gauge(
            "gauntlet_train_loss",
            "Miner: training loss (nats/token) at the first and last inner step of the latest window",
            ["step"],
        )
        self.train_tokens_per_second = gauge(
            "gauntlet_train_tokens_per_second", "Miner: training throughput of the latest window"
        )
        self.train_tokens = counter("gauntlet_train_tokens", "Miner: tokens trained on")
        self.train_steps = counter("gauntlet_train_steps", "Miner: inner optimizer steps taken")
        self.validation_loss = gauge(
            "gauntlet_validation_loss",
            "Validator: loss (nats/token) of the global model on held-out pages, before and after "
            "the latest window's outer step",
            ["stage"],
        )
        self.peers = gauge(
            "gauntlet_peers",
            "Validator: miners in the latest scored window: registered, live (passed the fast "
            "filter), ok (passed every check), evaluated (losses measured)",
            ["state"],
        )
        self.peer_outcomes = counter(
            "gauntlet_peer_outcomes", "Validator: per-miner outcomes of scored windows", ["outcome"]
        )
        self.peer_score = gauge("gauntlet_peer_score", "Validator: final score per uid", ["uid"])
        self.peer_weight = gauge(
            "gauntlet_peer_weight", "Validator: normalised weight per uid", ["uid"]
        )
        self.peer_rating = gauge(
            "gauntlet_peer_rating", "Validator: OpenSkill ordinal per uid", ["uid"]
        )
        self.peer_sync = gauge(
            "gauntlet_peer_sync", "Validator: sync score moving average per uid", ["uid"]
        )
        self.weights_set = counter(
            "gauntlet_weights_set",
            "Validator: attempts to set weights on chain by result (success, failure, skipped)",
            ["result"],
        )
        self.gathered = counter(
            "gauntlet_gathered_contributions",
            "Peer contributions fetched at outer steps, by gather status",
            ["status"],
        )
        self.reported_fault = gauge(
            "gauntlet_reported_fault",
            "Miner: validators whose report of the previous window scores this miner "
            "unreadable or invalid (a set-up fault it can fix), by status",
            ["status"],
        )
        self.model_diverged = gauge(
            "gauntlet_model_diverged",
            "1 while this node's model differs from the lead's record (fingerprint mismatch or "
            "a recorded payload it could not fetch) until a checkpoint repairs it; else 0",
        )
        self.record_outcomes = counter(
            "gauntlet_record_outcomes",
            "Outer steps by how the window's model was decided: applied (the lead's record), "
            "skipped (no record in time: the model is unchanged), diverged",
            ["outcome"],
        )
        self.ledger_breaks = counter(
            "gauntlet_ledger_breaks",
            "Records of the lead that did not link to this node's ledger head (the lead forked "
            "the contribution ledger, or this node missed a record); the node still follows them",
        )
        self.upload_bytes = counter(
            "gauntlet_upload_bytes", "Bytes written to the node's own bucket", ["artifact"]
        )
        self.upload_seconds = histogram(
            "gauntlet_upload_seconds", "Duration of successful uploads", ["artifact"]
        )
        self.download_bytes = counter(
            "gauntlet_download_bytes", "Bytes read from peers' buckets", ["artifact"]
        )
        self.download_seconds = histogram(
            "gauntlet_download_seconds", "Duration of successful downloads", ["artifact"]
        )
        self.errors = counter(
            "gauntlet_errors", "Errors the node rode out, by kind (see docs/metrics.md)", ["kind"]
        )

    def set_node(self, role: str, uid: int, hotkey: str) -> None:
        self.node_info.clear()
        self.node_info.labels(role, str(uid), hotkey, __version__).set(1)

    def observe_training(self, losses: Sequence[float], tokens: int, seconds: float) -> None:
        """A miner's window of inner steps: ``losses`` per step (nats/token), ``tokens`` in total."""
        if losses:
            self.train_loss.labels("first").set(losses[0])
            self.train_loss.labels("last").set(losses[-1])
        self.train_steps.inc(len(losses))
        self.train_tokens.inc(tokens)
        if seconds > 0:
            self.train_tokens_per_second.set(tokens / seconds)

    def observe_report(self, report: WindowReport) -> None:
        """A validator's scored window: losses, peer counts, and per-uid gauges replaced."""
        self.validation_loss.labels("before").set(report.validation_loss_before)
        self.validation_loss.labels("after").set(report.validation_loss_after)
        peers = report.peers
        self.peers.labels("registered").set(len(peers))
        self.peers.labels("live").set(sum(p.status not in _FAST_FILTER_FAILURES for p in peers))
        self.peers.labels("ok").set(sum(p.status == "ok" for p in peers))
        self.peers.labels("evaluated").set(sum(p.evaluated for p in peers))
        # Replace, not update: a uid that left the subnet must stop being exported.
        for per_uid in (self.peer_score, self.peer_weight, self.peer_rating, self.peer_sync):
            per_uid.clear()
        for p in peers:
            self.peer_outcomes.labels(p.status).inc()
            uid = str(p.uid)
            self.peer_score.labels(uid).set(p.score)
            self.peer_weight.labels(uid).set(p.weight)
            if p.rating is not None:
                self.peer_rating.labels(uid).set(p.rating)
            if p.sync is not None:
                self.peer_sync.labels(uid).set(p.sync)

    @contextmanager
    def upload(self, artifact: str, nbytes: int) -> Iterator[None]:
        """Time the body; counted only if it returns (a failed put raises through)."""
        started = time.perf_counter()
        yield
        self.upload_seconds.labels(artifact).observe(time.perf_counter() - started)
        self.upload_bytes.labels(artifact).inc(nbytes)

    @contextmanager
    def download(self, artifact: str) -> Iterator[Transfer]:
        """Time the body, which sets ``transfer.nbytes``; counted only if it returns."""
        transfer = Transfer()
        started = time.perf_counter()
        yield transfer
        self.download_seconds.labels(artifact).observe(time.perf_counter() - started)
        self.download_bytes.labels(artifact).inc(transfer.nbytes)

    def error(self, kind: str) -> None:
        self.errors.labels(kind).inc()


METRICS = NodeMetrics(REGISTRY)
