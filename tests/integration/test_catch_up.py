"""A node that was never running catches up from the lead's checkpoint and aggregation
records and reaches exactly the model of the lead, which never stopped. The same run's
records and checkpoints form the contribution ledger: ``gauntlet ledger`` verifies it and
its numbers are the lead's records and window reports."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from pathlib import Path

import pytest
from bittensor import Wallet
from integration_helpers import HonestRun

from gauntlet.chain.sim.process import spawn_sim_chain
from gauntlet.cli import main
from gauntlet.config import GauntletConfig
from gauntlet.node.runtime import default_bucket, open_runtime
from gauntlet.storage.filesystem import FilesystemStore
from gauntlet.train.fingerprint import fingerprint, max_abs_difference
from protocol.envelope import open_envelope
from protocol.keys import (
    aggregation_record_key,
    aggregations_prefix,
    checkpoint_manifest_key,
    checkpoints_prefix,
    window_of_key,
    window_report_key,
)
from protocol.schemas import AggregationRecord, WindowReport

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def finished_run(honest_run: HonestRun) -> Path:
    return honest_run.run


def _last_record(run: Path) -> AggregationRecord:
    lead = Wallet(name="validator0", path=str(run / "wallets")).hotkey.ss58_address
    store = FilesystemStore(run / "stores", default_bucket(lead))
    keys = [
        p.relative_to(store.base).as_posix()
        for p in (store.base / aggregations_prefix()).rglob("*")
    ]
    window = max(w for k in keys if (w := window_of_key(k)) is not None)
    raw = (store.base / aggregation_record_key(window, lead)).read_bytes()
    return open_envelope(raw, AggregationRecord, expected_signer=lead, expected_window=window)


def test_late_node_reaches_the_leads_fingerprint_from_a_checkpoint(
    finished_run: Path, caplog: pytest.LogCaptureFixture
) -> None:
    record = _last_record(finished_run)
    target = record.window + 1
    chain = spawn_sim_chain(finished_run / "chain.sqlite", finished_run / "chain-again.url")
    try:
        data = json.loads((finished_run / "node-config.json").read_text())
        data["chain"]["endpoint"] = chain.url
        data["wallet"]["name"] = "miner0"
        config = GauntletConfig.model_validate(data)

        async def catch_up() -> list[float]:
            rt = await open_runtime(config)
            try:
                assert rt.window == 0
                await rt.catch_up(target)
                assert rt.window == target
                return fingerprint(rt.model, target)
            finally:
                await rt.close()

        with caplog.at_level(logging.INFO):
            reached = asyncio.run(catch_up())
    finally:
        chain.stop()
    assert max_abs_difference(reached, record.fingerprint) <= 1e-6
    assert "loaded the lead's checkpoint of window" in caplog.text
    assert "applied the lead's record" in caplog.text or target % 2 == 0


def test_the_ledger_over_the_run_is_the_leads_records_and_reports(
    finished_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lead = Wallet(name="validator0", path=str(finished_run / "wallets")).hotkey.ss58_address
    store = FilesystemStore(finished_run / "stores", default_bucket(lead))
    stored = {
        w: (store.base / aggregation_record_key(w, lead)).read_bytes()
        for p in (store.base / aggregations_prefix()).rglob("*.json")
        if (w := window_of_key(p.relative_to(store.base).as_posix())) is not None
    }
    assert main(["ledger", "--stores", str(finished_run / "stores"), "--json"]) == 0
    ledger = json.loads(capsys.readouterr().out)
    assert ledger["genesis"] and [w["window"] for w in ledger["windows"]] == sorted(stored)
    for line in ledger["windows"]:
        raw = stored[line["window"]]
        record = open_envelope(raw, AggregationRecord, expected_signer=lead)
        assert line["sha256"] == hashlib.sha256(raw).hexdigest() and line["lead"] == lead
        assert [(c["uid"], c["hotkey"], c["share"]) for c in line["contributions"]] == [
            (c.uid, c.hotkey, pytest.approx(c.share)) for c in record.contributions
        ]
        report_path = store.base / window_report_key(line["window"], lead)
        if not report_path.is_file():  # a window before the lead's first (its empty record)
            assert not line["contributions"]
            continue
        report = WindowReport.model_validate_json(report_path.read_bytes())
        assert line["validation_loss"] == report.validation_loss_before
        if line["improvement"] is not None and line["window"] + 1 in stored:
            expected = report.validation_loss_before - report.validation_loss_after
            assert line["improvement"] == pytest.approx(expected, abs=1e-6)
    credited = sum(h["improvement"] for h in ledger["hotkeys"])
    assert credited == pytest.approx(ledger["attributed_improvement"], abs=1e-9)
    assert any(line["contributions"] for line in ledger["windows"])
    # the checkpoints the lead wrote (every 2 windows) are the models its records lead to
    checkpoints = sorted(
        int(p.parent.parent.name)
        for p in (store.base / checkpoints_prefix()).glob("*/*/manifest.json")
        if (store.base / checkpoint_manifest_key(int(p.parent.parent.name), lead)) == p
    )
    assert len(checkpoints) >= 2 and all(w % 2 == 0 for w in checkpoints), checkpoints
    for window in checkpoints:
        code = main(
            [
                "ledger",
                "--stores",
                str(finished_run / "stores"),
                "--checkpoint-window",
                str(window),
                "--json",
            ]
        )
        assert code == 0
        checked = json.loads(capsys.readouterr().out)
        assert checked["checkpoint"]["model_sha256"] is not None
        assert checked["head"]["window"] == window - 1
