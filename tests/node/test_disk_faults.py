"""A full or read-only local disk is reported and retried; no node crashes on it (issue 15).

The real-filesystem test fills a small tmpfs (it needs root to mount one; CI runs as root)
under a validator's state directory, frees it a second later, and checks that the window's
journal record and state were written once the space was back."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gauntlet.node.lifecycle import disk_fault, outage_pause, retry_local_write, retry_transient
from gauntlet.node.validator_state import ValidatorFiles
from gauntlet.score.state import ValidatorScores
from gauntlet.telemetry import METRICS
from protocol.schemas import WindowReport

HOTKEY = "5Validator" + "x" * 38


def _errors(kind: str) -> float:
    return METRICS.errors.labels(kind)._value.get()  # type: ignore[attr-defined]


def test_disk_full_quota_and_read_only_are_disk_faults_and_nothing_else_is() -> None:
    assert disk_fault(OSError(errno.ENOSPC, "No space left on device")) == "disk_full"
    assert disk_fault(OSError(errno.EDQUOT, "Disk quota exceeded")) == "disk_full"
    assert disk_fault(OSError(errno.EROFS, "Read-only file system")) == "disk_read_only"
    assert disk_fault(PermissionError(errno.EACCES, "Permission denied")) == "disk_read_only"
    assert disk_fault(FileNotFoundError(errno.ENOENT, "gone")) is None
    assert disk_fault(ValueError("not an OSError")) is None


def test_a_step_that_hits_a_full_disk_is_retried_and_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failures = [OSError(errno.ENOSPC, "No space left on device")] * 2
    before = _errors("disk_full")

    async def step() -> str:
        if failures:
            raise failures.pop()
        return "saved"

    with caplog.at_level(logging.WARNING, logger="gauntlet.node.lifecycle"):
        started = time.monotonic()
        assert asyncio.run(retry_transient(step)) == "saved"
    assert time.monotonic() - started < outage_pause(0) + outage_pause(1) + 1.0
    assert caplog.text.count("local disk full") == 2
    assert _errors("disk_full") == before + 2


def test_any_other_os_error_is_not_retried() -> None:
    async def step() -> None:
        raise FileNotFoundError(errno.ENOENT, "a bug, not the disk")

    with pytest.raises(FileNotFoundError):
        asyncio.run(retry_transient(step))


def _mount_tmpfs(path: Path, size: str) -> bool:
    if os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True)  # fmt: skip
    return done.returncode == 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    if not _mount_tmpfs(disk, "256k"):
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def test_a_validator_window_commit_waits_out_a_full_disk(
    small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files = ValidatorFiles(small_disk, HOTKEY)
    state = ValidatorScores(last_window=4)
    report = WindowReport(
        window=4, hotkey=HOTKEY, validation_loss_before=5.0, validation_loss_after=4.9, peers=[]
    )
    filler = _fill(small_disk)

    async def run() -> str:
        async def free_space() -> None:
            await asyncio.sleep(1.0)
            filler.unlink()

        freeing = asyncio.create_task(free_space())
        digest = await retry_local_write(
            lambda: files.commit_window(state, report), "state and journal"
        )
        await freeing
        return digest

    with caplog.at_level(logging.WARNING, logger="gauntlet.node.lifecycle"):
        digest = asyncio.run(run())
    assert "cannot write state and journal: local disk full" in caplog.text
    assert files.load_state() == state  # written once the space was back
    records = [line for line in files.journal.read_text().splitlines() if line.strip()]
    assert records and all(f'"state_sha256": "{digest}"' in r for r in records[-1:])
