"""Object key names, in one place. Keys name the *protocol* version, never the code version."""

from __future__ import annotations

import re

from protocol.version import PROTOCOL_VERSION

_PREFIX = f"gauntlet/v{PROTOCOL_VERSION}"
_SAFE = re.compile(r"^[A-Za-z0-9]{1,64}$")


def _safe(hotkey: str) -> str:
    if not _SAFE.match(hotkey):
        raise ValueError(f"hotkey not usable in a key: {hotkey!r}")
    return hotkey


def contribution_key(window: int, hotkey: str) -> str:
    """A miner's pseudo-gradient for ``window``, in the miner's own bucket."""
    return f"{_PREFIX}/contributions/{window:010d}/{_safe(hotkey)}.safetensors"


def contributions_prefix(window: int) -> str:
    return f"{_PREFIX}/contributions/{window:010d}/"


def window_report_key(window: int, hotkey: str) -> str:
    """A validator's public per-window report (scores, weights, losses), JSON."""
    return f"{_PREFIX}/reports/{window:010d}/{_safe(hotkey)}.json"


def window_of_key(key: str) -> int | None:
    """The window a key belongs to, or None for keys that carry no window."""
    match = re.search(r"/(\d{10})/", key)
    return int(match.group(1)) if match else None


def protocol_prefix() -> str:
    return f"{_PREFIX}/"
