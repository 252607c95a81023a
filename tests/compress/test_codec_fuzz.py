"""bench/fuzz_codec.py on a sample: mutated payloads of every codec setting (top-k with and
without a DCT, u8/f16/f32 values; sparse with 1, 2, 3 and 8 bits) through the container and
the codec are refused with a typed ProtocolError or decoded to finite tensors of the
declared shapes, and their compressed aggregates stay finite; never another exception."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CASES = 2800  # 400 per setting


def test_mutated_codec_payloads_are_refused_typed_or_decoded_finite() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fuzz_codec.py"), "--cases", str(CASES)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    report = json.loads(out.stdout)
    assert out.returncode == 0 and report["untyped"] == [], report["untyped"]
    assert report["cases"] == CASES
    by_setting: dict[str, dict[str, int]] = {}
    for key, count in report["outcomes"].items():
        setting, outcome = key.split(":")
        by_setting.setdefault(setting, {})[outcome] = count
    assert len(by_setting) == 7, sorted(by_setting)
    for setting, outcomes in by_setting.items():
        assert sum(outcomes.values()) == CASES // 7, setting
        accepted = outcomes.get("accepted", 0) + outcomes.get("accepted+aggregated", 0)
        refused = sum(n for k, n in outcomes.items() if not k.startswith("accepted"))
        # the mutations reach both verdicts, and accepted payloads were aggregated
        assert accepted > CASES // 70 and refused > CASES // 70, (setting, outcomes)
        assert outcomes.get("accepted+aggregated", 0) >= 1, (setting, outcomes)
    # the codec's own checks (after the container's) refuse some of every codec's cases
    assert any("sparse" in k and k.endswith("MalformedPayload") for k in report["outcomes"])
    assert any("topk" in k and k.endswith("MalformedPayload") for k in report["outcomes"])
