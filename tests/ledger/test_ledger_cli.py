"""``gauntlet ledger``: text, JSON and CSV say the same thing; a fault is one line naming the
window, and a non-zero exit."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections import defaultdict
from pathlib import Path

import pytest
from ledger_helpers import LEAD_A, MINERS, LedgerRun

from gauntlet.cli import main
from protocol.keys import aggregation_record_key


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LedgerRun:
    for name in [k for k in os.environ if k.startswith("GAUNTLET_")]:
        monkeypatch.delenv(name)
    return LedgerRun(tmp_path / "stores").build()


def _ledger(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["ledger", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_and_csv_agree_and_add_up(run: LedgerRun, capsys) -> None:
    code, out, _ = _ledger(capsys, "--stores", str(run.root), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["head"] == run.links[5].model_dump() and report["genesis"] is True
    assert [w["window"] for w in report["windows"]] == [0, 1, 2, 4, 5]
    assert report["pending_window"] == 5
    totals = {h["hotkey"]: h["improvement"] for h in report["hotkeys"]}
    assert math.fsum(totals.values()) == pytest.approx(report["attributed_improvement"])
    assert totals[MINERS[0]] == pytest.approx(0.775)

    code, out, _ = _ledger(capsys, "--stores", str(run.root), "--csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == sum(len(w["contributions"]) for w in report["windows"])
    credit: dict[str, float] = defaultdict(float)
    for row in rows:
        if row["pending"] == "0":
            credit[row["hotkey"]] += float(row["credit"])
        else:
            assert row["window"] == "5" and row["credit"] == ""
    assert credit == pytest.approx(totals)
    shares: dict[str, float] = defaultdict(float)
    for row in rows:
        shares[row["window"]] += float(row["share"])
    assert all(s == pytest.approx(1.0) for s in shares.values())


def test_text_report_names_the_head_and_the_pending_window(run: LedgerRun, capsys) -> None:
    code, out, _ = _ledger(capsys, "--stores", str(run.root), "--checkpoint-window", "5")
    assert code == 0
    assert "5 records" not in out and "4 records from the first record (genesis)" in out
    assert f"sha256 {run.links[4].sha256}" in out
    assert "checkpoint of window 5" in out and "matches the head record" in out
    assert "window 4 is pending" in out


def test_a_tampered_record_is_one_line_naming_its_window(run: LedgerRun, capsys) -> None:
    path = run.path(LEAD_A, aggregation_record_key(2, LEAD_A.ss58_address))
    raw = path.read_bytes()
    path.write_bytes(raw.replace(b'"signature":"', b'"signature":"00', 1))
    code, out, err = _ledger(capsys, "--stores", str(run.root), "--json")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("gauntlet ledger: record of window 2 ")


def test_an_empty_directory_is_a_clear_error(tmp_path: Path, capsys) -> None:
    code, _, err = _ledger(capsys, "--stores", str(tmp_path))
    assert code == 1 and "no bucket" in err
