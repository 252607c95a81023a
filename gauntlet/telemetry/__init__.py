"""Operator telemetry: Prometheus metrics and the HTTP server that exports them.

A layer beside storage and chain: nodes import it, it imports no node code.
"""

from gauntlet.telemetry.metrics import METRICS, NodeMetrics
from gauntlet.telemetry.server import TelemetryError, TelemetryServer, base_url, free_ports

__all__ = ["METRICS", "NodeMetrics", "TelemetryError", "TelemetryServer", "base_url", "free_ports"]
