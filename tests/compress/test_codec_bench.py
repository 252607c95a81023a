"""bench/codec.py --quick runs and prints the JSON it promises: both codecs, a real
pseudo-gradient, the aggregate beside its lower bound, and the load. (It is the codec step
of bench/gpu.sh's dry run.)"""

from __future__ import annotations

import json
from pathlib import Path


def test_quick_bench_prints_parsable_json(gpu_dry_run: Path) -> None:
    report = json.loads((gpu_dry_run / "codec.json").read_text())
    assert {"platform", "cpu_count", "cpu_model", "torch", "device"} <= set(report["machine"])
    for result in report["results"].values():
        assert result["compress_MBps"] > 0 and result["payload_bytes"] > 0
        assert 0 <= result["relative_error"] < 1
    assert report["results"]["dense"]["relative_error"] == 0
    assert report["results"]["topk c64 k32 dct u8"]["ratio_vs_fp32"] > 100
    assert {"topk c64 k32 dct u8", "sparse c4096 k54 b2"} <= set(report["real"]["results"])
    assert {"load_average_at_start", "load_average_at_end"} <= set(report["machine"])
    for label in ("topk c64 k32 dct u8", "sparse c4096 k54 b2"):  # both codecs aggregate
        agg = report["aggregate"]["results"][label]
        assert set(agg["aggregate_s"]) == {"none", "per_peer", "clip"}
        assert agg["lower_bound_s"] > 0 and agg["peers"] >= 2
        # --profile (as bench/gpu.sh runs it): where one per_peer aggregate's time goes
        prof = agg["profile"]
        assert prof["mode"] == "per_peer" and prof["ranked_by"] == "self CPU time"
        assert prof["aten_calls"] > 0 and prof["self_cpu_ms_total"] > 0
        assert prof["host_to_device_copies"] == 0  # on a CPU nothing crosses to a device
        self_ms = [row["self_cpu_ms"] for row in prof["top"]]
        assert self_ms == sorted(self_ms, reverse=True) and len(self_ms) == 12
        assert any(row["event"].startswith("aten::") for row in prof["top"])
    # the codec's kept scratch memory is reported against the largest parameter
    ws = report["workspace"]
    assert ws["kept_bytes"] == sum(ws["slots"].values()) > 0
    assert ws["kept_over_largest"] == round(ws["kept_bytes"] / ws["largest_param_bytes"], 2)
