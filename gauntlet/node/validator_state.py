"""What a validator keeps on disk: its scoring state, its secret, its journal.

The state (ratings, moving averages, scores, counters, replay sketches, last
window) is rewritten atomically after every window, so a validator killed at any
instant restarts from the last finished window. The secret seeds what miners
must not predict (which peers are evaluated, the random pages); it is created
once and kept. The journal gets one JSON line per window: the same table the
validator prints, plus a digest of the state, for tools and audits.

Start-up (:meth:`ValidatorFiles.load_state`) survives SIGKILL and disk damage:
it removes temp files left by an interrupted write, cuts a torn last journal
line, and moves an unreadable state file aside (``<state>.corrupt-<UTC time>``)
instead of refusing to start, resuming after the journal's last window.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from gauntlet.node.crash_points import crash_point
from gauntlet.score.state import ValidatorScores
from gauntlet.storage.atomic_file import TEMP_PREFIX, fsync_dir, temp_files, write_atomically
from protocol.schemas import WindowReport

log = logging.getLogger(__name__)

SECRET_BYTES = 32
# A temp file this old belongs to no live writer (writes take milliseconds), even
# one of another node sharing the state directory, as the localnet's nodes do.
STALE_TEMP_SECONDS = 3600.0
_TAIL_CHUNK = 64 * 1024


JOURNAL_DIGEST = "state_sha256"  # what a journal line adds to the window report


def journal_report(line: str | bytes) -> WindowReport:
    """The window report of one journal line (:meth:`ValidatorFiles.append_journal`), its
    state digest dropped; raises ``ValueError`` (pydantic's errors included) for a line
    that is not one, such as a torn last line after a crash."""
    data = json.loads(line)
    if not isinstance(data, dict):
        raise ValueError("a journal line is a JSON object")
    data.pop(JOURNAL_DIGEST, None)
    return WindowReport.model_validate(data)


class ValidatorFiles:
    def __init__(self, state_dir: Path, hotkey: str) -> None:
        self.state = state_dir / f"validator-{hotkey}.json"
        self.secret = state_dir / f"validator-{hotkey}.secret"
        self.journal = state_dir / f"validator-{hotkey}.jsonl"
        self.spool = state_dir / f"spool-{hotkey}"  # downloaded sealed uploads (scratch)

    def load_state(self) -> ValidatorScores:
        """Recover the directory after a crash (see the module docstring), then the state.

        Never raises for a damaged state file: what cannot be read is moved aside
        and reported in one WARNING line.
        """
        self.remove_temp_files()
        self.repair_journal()
        if not self.state.is_file():
            return ValidatorScores()
        try:
            return ValidatorScores.from_dict(json.loads(self.state.read_bytes()))
        # JSON errors and bad UTF-8 are ValueErrors; the others are valid JSON of the
        # wrong shape (a list, a missing key, a string where a number belongs).
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            return self._set_aside(exc)

    def _set_aside(self, exc: BaseException) -> ValidatorScores:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        aside = self.state.with_name(f"{self.state.name}.corrupt-{stamp}")
        os.replace(self.state, aside)
        fsync_dir(self.state.parent)
        last = self.last_journal_window()
        resume = (
            f"resuming after window {last} (from the journal)"
            if last is not None
            else "starting fresh"
        )
        log.warning(
            "validator state %s is unreadable (%s: %s); moved to %s; ratings, scores, "
            "evaluation counters and replay sketches are lost; %s",
            self.state, type(exc).__name__, str(exc)[:120], aside.name, resume,
        )  # fmt: skip
        return ValidatorScores(last_window=-1 if last is None else last)

    def remove_temp_files(self) -> list[Path]:
        """Delete temp files of our own interrupted writes, and any temp file in the
        directory too old to belong to a live writer; returns what was removed."""
        directory = self.state.parent
        if not directory.is_dir():
            return []
        ours = {*temp_files(self.state), *temp_files(self.secret)}
        now = time.time()
        removed = []
        for path in directory.glob(f"{TEMP_PREFIX}*"):
            with contextlib.suppress(FileNotFoundError):  # another node's writer renamed it
                if path.is_file() and (
                    path in ours or now - path.stat().st_mtime > STALE_TEMP_SECONDS
                ):
                    path.unlink()
                    removed.append(path)
        if removed:
            log.info("removed %d temp files left by an interrupted write", len(removed))
        return removed

    def repair_journal(self) -> int:
        """Cut a torn last line (a write killed midway); returns the bytes removed.

        Without this the next record would be appended to the fragment, and the
        two would read as one garbled line.
        """
        if not self.journal.is_file():
            return 0
        with open(self.journal, "r+b") as fh:
            size = fh.seek(0, os.SEEK_END)
            keep = _end_of_last_line(fh, size)
            if keep == size:
                return 0
            fh.truncate(keep)
            fh.flush()
            os.fsync(fh.fileno())
        log.warning(
            "journal %s ended in a torn record; removed its last %d bytes",
            self.journal, size - keep,
        )  # fmt: skip
        return size - keep

    def last_journal_window(self) -> int | None:
        """The window of the journal's last readable record, if any."""
        if not self.journal.is_file():
            return None
        with open(self.journal, "rb") as fh:
            lines = fh.read().splitlines()
        for line in reversed(lines):
            try:
                window = json.loads(line)["window"]
            except (ValueError, KeyError, TypeError):
                continue
            if type(window) is int and window >= 0:
                return window
        return None

    def commit_window(self, state: ValidatorScores, report: WindowReport) -> str:
        """Record a finished window: the journal line first (fsynced), then the state.

        In this order a crash between the two leaves the journal ahead of the state,
        never behind it: the window is processed again on restart and journalled a
        second time (readers take the last record of a window), but no state the
        journal does not account for is ever on disk. Returns the state's digest.
        """
        data = canonical(state.to_dict())
        digest = hashlib.sha256(data).hexdigest()
        self.append_journal(report, digest)
        crash_point("journalled")
        write_atomically(self.state, lambda fh: fh.write(data))
        return digest

    def save_state(self, state: ValidatorScores) -> str:
        """Write atomically; returns the state's digest (sha256 of its canonical JSON)."""
        data = canonical(state.to_dict())
        write_atomically(self.state, lambda fh: fh.write(data))
        return hashlib.sha256(data).hexdigest()

    def load_secret(self, configured_hex: str) -> bytes:
        """The configured secret, else the one on disk, else a new random one saved for next time."""
        if configured_hex:
            return bytes.fromhex(configured_hex)
        if self.secret.is_file():
            return bytes.fromhex(self.secret.read_text().strip())
        secret = os.urandom(SECRET_BYTES)
        write_atomically(self.secret, lambda fh: fh.write(secret.hex().encode()))
        os.chmod(self.secret, 0o600)
        return secret

    def append_journal(self, report: WindowReport, state_digest: str) -> None:
        """Append one record and fsync it, so it is on disk when this returns."""
        line = {**report.model_dump(mode="json"), JOURNAL_DIGEST: state_digest}
        record = (json.dumps(line, sort_keys=True) + "\n").encode()
        created = not self.journal.exists()
        with open(self.journal, "ab+") as fh:
            size = fh.seek(0, os.SEEK_END)
            if size and _end_of_last_line(fh, size) != size:
                record = b"\n" + record  # never glue a record onto a torn line
            fh.write(record)
            fh.flush()
            os.fsync(fh.fileno())
        if created:
            fsync_dir(self.journal.parent)


def _end_of_last_line(fh: Any, size: int) -> int:
    """Offset just past the file's last newline (0 if it has none); reads only its tail."""
    end = size
    while end > 0:
        start = max(0, end - _TAIL_CHUNK)
        fh.seek(start)
        chunk = fh.read(end - start)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        end = start
    return 0


def canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
