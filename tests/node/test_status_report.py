"""``gauntlet status``: every validator's verdict on a uid and the weight it holds on chain."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from gauntlet.chain.base import Metagraph, Neuron
from gauntlet.chain.sim.client import SimChainClient
from gauntlet.chain.sim.process import SimChainProcess, spawn_sim_chain
from gauntlet.cli import main
from gauntlet.config import load_config
from gauntlet.node.identity import create_wallet
from gauntlet.node.status_fetch import StatusError, fetch_status
from gauntlet.node.status_report import format_status, last_windows, uid_status
from gauntlet.storage.filesystem import FilesystemStore
from protocol.commitment import FilesystemCommitment, encode_commitment
from protocol.keys import window_report_key
from protocol.schemas import PeerResult, WindowReport

MINER, OTHER, VALI_A, VALI_B = "5Miner", "5Other", "5ValiA", "5ValiB"
LONG_REASON = "signature does not verify for this netuid and window: " + "x" * 80


def _neuron(uid: int, hotkey: str, stake: float = 0.0, last_update: int = 0) -> Neuron:
    return Neuron(uid, hotkey, "cold", stake, stake > 0, last_update, incentive=0.25 * (uid == 2))


def _report(window: int, hotkey: str, *peers: PeerResult) -> WindowReport:
    return WindowReport(
        window=window, hotkey=hotkey, validation_loss_before=5.0, validation_loss_after=4.9,
        peers=list(peers),
    )  # fmt: skip


METAGRAPH = Metagraph(
    netuid=1,
    block=130,
    neurons=(_neuron(0, VALI_A, 1000, 120), _neuron(1, VALI_B, 10, 3), _neuron(2, MINER)),
    weights={0: {2: 0.75, 3: 0.25}},
)


def test_each_window_has_one_row_per_validator_with_the_uids_verdict() -> None:
    ok = PeerResult(uid=2, hotkey=MINER, status="ok", evaluated=True, score=0.4, weight=0.8)
    bad = PeerResult(uid=2, hotkey=MINER, status="invalid", reason=LONG_REASON)
    reports = {
        0: {7: _report(7, VALI_A, ok), 8: _report(8, VALI_A, bad)},
        1: {8: _report(8, VALI_B)},
    }
    status = uid_status(METAGRAPH, METAGRAPH.neurons[2], reports, windows=5, notes=[])
    assert status.windows == [4, 5, 6, 7, 8]
    assert [(r.window, r.validator_uid) for r in status.rows] == [(7, 0), (8, 0), (8, 1)]
    assert status.rows[0].result == ok and status.rows[1].result == bad
    assert status.rows[2].result is None  # validator 1's report does not list the uid


def test_an_entry_for_the_uid_under_another_hotkey_is_not_the_targets() -> None:
    stale = PeerResult(uid=2, hotkey=OTHER, status="ok", score=0.9)
    status = uid_status(
        METAGRAPH, METAGRAPH.neurons[2], {0: {3: _report(3, VALI_A, stale)}}, windows=1, notes=[]
    )
    assert status.rows[0].result is None


def test_chain_weights_tell_a_share_from_a_validator_that_set_none() -> None:
    status = uid_status(METAGRAPH, METAGRAPH.neurons[2], {}, windows=3, notes=["n"])
    by_uid = {w.validator_uid: w for w in status.chain_weights}
    assert by_uid[0].weight == 0.75 and by_uid[0].last_update == 120
    assert by_uid[1].weight is None
    assert status.windows == [] and status.notes == ["n"]


def test_last_windows_end_at_the_newest_report_of_any_validator() -> None:
    reports = {0: {3: _report(3, VALI_A)}, 1: {9: _report(9, VALI_B)}}
    assert last_windows(reports, 3) == [7, 8, 9]
    assert last_windows(reports, 20) == list(range(10))


def test_the_text_keeps_the_whole_reason_left_aligned_and_says_when_weights_were_set() -> None:
    bad = PeerResult(uid=2, hotkey=MINER, status="invalid", reason=LONG_REASON)
    text = format_status(
        uid_status(
            METAGRAPH, METAGRAPH.neurons[2], {0: {8: _report(8, VALI_A, bad)}}, windows=2, notes=[]
        )
    )
    row = next(line for line in text.splitlines() if line.startswith("8 "))
    assert row.endswith(LONG_REASON) and "invalid" in row
    assert "0.7500, set at block 120 (10 blocks ago)" in text
    assert "validator 1 (5ValiB, stake 10): no weights on chain" in text


def test_the_text_shows_the_work_the_rating_match_ranks() -> None:
    measured = PeerResult(uid=2, hotkey=MINER, status="ok", evaluated=True,
                          random_improvement=0.0064, own_advantage=0.004, declared_pages=3)  # fmt: skip
    text = format_status(
        uid_status(
            METAGRAPH,
            METAGRAPH.neurons[2],
            {0: {8: _report(8, VALI_A, measured)}},
            windows=2,
            notes=[],
        )  # fmt: skip
    )
    header = next(line for line in text.splitlines() if line.startswith("window "))
    row = next(line for line in text.splitlines() if line.startswith("8 "))
    assert header.split()[4:7] == ["own", "random", "work"]
    assert "0.0064  0.0120" in row  # random, then 3 pages x 0.004


# ---- the I/O shell against a real chain process and real filesystem buckets ----------


@pytest.fixture
def chain(tmp_path: Path) -> SimChainProcess:
    process = spawn_sim_chain(tmp_path / "chain.sqlite", tmp_path / "chain.url")
    yield process  # type: ignore[misc]
    process.stop()


async def _subnet(url: str, wallets: Path, store_root: Path) -> tuple[str, str]:
    """A validator with a bucket holding two reports and weights on chain, and a miner."""
    validator = create_wallet(wallets, "vali")
    miner = create_wallet(wallets, "miner")
    v, m = SimChainClient(url, 1, validator), SimChainClient(url, 1, miner)
    try:
        await v.register(stake=1000)
        uid = await m.register()
        await v.commit(encode_commitment(FilesystemCommitment(bucket="vb", root=str(store_root))))
        store = FilesystemStore(store_root, "vb")
        for window, status in ((4, "late"), (5, "ok")):
            entry = PeerResult(uid=uid, hotkey=miner.ss58_address, status=status, weight=1.0)
            report = _report(window, validator.ss58_address, entry)
            await store.put(
                window_report_key(window, validator.ss58_address), report.model_dump_json().encode()
            )
        await v.set_weights([uid], [1.0])
    finally:
        await v.close()
        await m.close()
    return validator.ss58_address, miner.ss58_address


def test_status_reads_reports_from_the_committed_bucket_and_weights_from_the_chain(
    tmp_path: Path, chain: SimChainProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "store"
    _, miner = asyncio.run(_subnet(chain.url, tmp_path / "wallets", root))
    flags = ["--chain.endpoint", chain.url, "--storage.root", str(root)]
    assert main(["status", "--hotkey", miner, "--windows", "1", "--json", *flags]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["uid"] == 1 and data["windows"] == [5]
    assert [r["result"]["status"] for r in data["rows"]] == ["ok"]
    assert data["chain_weights"][0]["weight"] == 1.0 and data["notes"] == []
    assert main(["status", "--uid", "1", *flags]) == 0
    text = capsys.readouterr().out
    assert "late" in text and "ok" in text and "1.0000, set at block" in text


def test_a_uid_that_is_not_registered_is_a_one_line_error(
    tmp_path: Path, chain: SimChainProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load_config(overrides={"chain": {"endpoint": chain.url}}, environ={})
    with pytest.raises(StatusError, match="uid 9 is not registered on netuid 1"):
        asyncio.run(fetch_status(config, uid=9))
    assert main(["status", "--uid", "9", "--chain.endpoint", chain.url]) == 1
    assert "uid 9 is not registered" in capsys.readouterr().err
