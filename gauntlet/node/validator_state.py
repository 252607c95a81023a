"""What a validator keeps on disk: its scoring state, its secret, its journal.

The state (ratings, moving averages, scores, counters, replay sketches, last
window) is rewritten atomically after every window, so a validator killed at any
instant restarts from the last finished window. The secret seeds what miners
must not predict (which peers are evaluated, the random pages); it is created
once and kept. The journal gets one JSON line per window: the same table the
validator prints, plus a digest of the state, for tools and audits.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from gauntlet.score.state import ValidatorScores
from gauntlet.storage.atomic_file import write_atomically
from protocol.schemas import WindowReport

log = logging.getLogger(__name__)

SECRET_BYTES = 32


class ValidatorFiles:
    def __init__(self, state_dir: Path, hotkey: str) -> None:
        self.state = state_dir / f"validator-{hotkey}.json"
        self.secret = state_dir / f"validator-{hotkey}.secret"
        self.journal = state_dir / f"validator-{hotkey}.jsonl"

    def load_state(self) -> ValidatorScores:
        if not self.state.is_file():
            return ValidatorScores()
        return ValidatorScores.from_dict(json.loads(self.state.read_text()))

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
        line = {**report.model_dump(mode="json"), "state_sha256": state_digest}
        with open(self.journal, "a") as fh:
            fh.write(json.dumps(line, sort_keys=True) + "\n")


def canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
