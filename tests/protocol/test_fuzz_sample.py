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


def test_sealed_fuzz_sample_raises_only_typed_protocol_errors() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fuzz_sealed.py"), "--cases", "600", "--seed", "3"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    report = json.loads(out.stdout)
    assert report["untyped"] == [] and out.returncode == 0, report["untyped"]
    outcomes = report["outcomes"]
    assert sum(v for k, v in outcomes.items() if k.startswith("sealed:")) == 600
    assert sum(v for k, v in outcomes.items() if k.startswith("reveal:")) == 600
    # Every layer is reached: the prefix, the signed header, the key, the ciphertext, the
    # payload inside, and accepted objects and reveals.
    for reached in ("sealed:MalformedPayload", "sealed:BadSignature", "sealed:BadReveal",
                    "sealed:HashMismatch",
                    "sealed:SealBroken", "sealed:accepted", "reveal:accepted",
                    "reveal:MalformedPayload"):  # fmt: skip
        assert outcomes.get(reached, 0) > 0, (reached, outcomes)
