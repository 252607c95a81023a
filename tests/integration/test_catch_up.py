"""A node that was never running catches up from the lead's checkpoint and aggregation
records and reaches exactly the model of the lead, which never stopped."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
from bittensor import Wallet
from integration_helpers import run_localnet

from gauntlet.chain.sim.process import spawn_sim_chain
from gauntlet.config import GauntletConfig
from gauntlet.node.runtime import default_bucket, open_runtime
from gauntlet.storage.filesystem import FilesystemStore
from gauntlet.train.fingerprint import fingerprint, max_abs_difference
from protocol.envelope import open_envelope
from protocol.keys import aggregation_record_key, aggregations_prefix, window_of_key
from protocol.schemas import AggregationRecord

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory, stdlib_dataset_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("catchup")
    completed = run_localnet(
        root,
        stdlib_dataset_dir,
        "--localnet.windows",
        "5",
        "--validator.checkpoint_interval",
        "2",
        timeout=400,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    (run,) = root.iterdir()
    return run


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
