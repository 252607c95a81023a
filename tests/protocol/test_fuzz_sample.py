"""bench/fuzz.py on a small sample: every mutated payload is accepted or a typed ProtocolError."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_fuzz_sample_raises_only_typed_protocol_errors() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fuzz.py"), "--cases", "300", "--seed", "15"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    report = json.loads(out.stdout)
    assert report["untyped"] == [] and out.returncode == 0, report["untyped"]
    assert report["cases"] == sum(report["outcomes"].values()) == 300
    assert not any(name.startswith("untyped:") for name in report["outcomes"])
    # The mutations reach past the signature, not only the first byte checks.
    assert {"MalformedPayload", "BadSignature", "SchemaMismatch", "accepted"} <= set(
        report["outcomes"]
    )
    assert {"platform", "cpu_count"} <= set(report["machine"]) and report["peak_rss_mib"] > 0
