"""Object key names, in one place. Keys name the *protocol* version, never the code version.

Every key is ``gauntlet/v{PROTOCOL_VERSION}/{artifact}/{window:010d}/{author hotkey}...``:
the window is zero-padded so lexical order is window order (listing a prefix
returns windows in sequence) and :func:`window_of_key` can read it back.
"""

from __future__ import annotations

import re

from protocol.version import PROTOCOL_VERSION

_PREFIX = f"gauntlet/v{PROTOCOL_VERSION}"
_SAFE = re.compile(r"^[A-Za-z0-9]{1,64}$")
_SAFE_FILE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def _safe(hotkey: str) -> str:
    # fullmatch: ``$`` would also accept a trailing newline.
    if not _SAFE.fullmatch(hotkey):
        raise ValueError(f"hotkey not usable in a key: {hotkey!r}")
    return hotkey


def contribution_key(window: int, hotkey: str) -> str:
    """A miner's *sealed* pseudo-gradient for ``window`` (:mod:`protocol.sealed`), in the
    miner's own bucket."""
    return f"{_PREFIX}/contributions/{_window(window)}/{_safe(hotkey)}.sealed"


def reveal_key(window: int, hotkey: str) -> str:
    """The key that opens a miner's sealed contribution for ``window``; a signed envelope,
    published only after the window's observation has closed."""
    return f"{_PREFIX}/reveals/{_window(window)}/{_safe(hotkey)}.json"


def arrivals_key(window: int, hotkey: str) -> str:
    """A validator's signed account of which sealed uploads it observed in time for
    ``window`` (:class:`protocol.schemas.ArrivalBook`)."""
    return f"{_PREFIX}/arrivals/{_window(window)}/{_safe(hotkey)}.json"


def contributions_prefix(window: int) -> str:
    return f"{_PREFIX}/contributions/{_window(window)}/"


def window_report_key(window: int, hotkey: str) -> str:
    """A validator's public per-window report (scores, weights, losses), JSON."""
    return f"{_PREFIX}/reports/{_window(window)}/{_safe(hotkey)}.json"


def reports_prefix() -> str:
    return f"{_PREFIX}/reports/"


def mirror_key(window: int, author_hotkey: str) -> str:
    """The lead's copy of a recorded payload (the opened, author-signed bytes), in the lead's
    bucket: followers read it there first, so an author cannot serve the lead alone."""
    return f"{_PREFIX}/mirrors/{_window(window)}/{_safe(author_hotkey)}.payload"


def peer_set_key(window: int, hotkey: str) -> str:
    """The lead validator's peer set taking effect at ``window``; a signed envelope."""
    return f"{_PREFIX}/peer-sets/{_window(window)}/{_safe(hotkey)}.json"


def peer_sets_prefix() -> str:
    return f"{_PREFIX}/peer-sets/"


def aggregation_record_key(window: int, hotkey: str) -> str:
    """Which contributions of ``window`` the lead validator aggregated; a signed envelope."""
    return f"{_PREFIX}/aggregations/{_window(window)}/{_safe(hotkey)}.json"


def aggregations_prefix() -> str:
    return f"{_PREFIX}/aggregations/"


def checkpoint_prefix(window: int, hotkey: str) -> str:
    """Folder of one checkpoint (θ at the start of ``window``): manifest and files."""
    return f"{_PREFIX}/checkpoints/{_window(window)}/{_safe(hotkey)}/"


def checkpoints_prefix() -> str:
    return f"{_PREFIX}/checkpoints/"


def checkpoint_manifest_key(window: int, hotkey: str) -> str:
    """The signed :class:`CheckpointManifest` envelope; written last, after every file."""
    return checkpoint_prefix(window, hotkey) + "manifest.json"


def checkpoint_file_key(window: int, hotkey: str, name: str) -> str:
    """One file a checkpoint manifest lists (``manifest.json`` is reserved)."""
    if not _SAFE_FILE.fullmatch(name) or name in {"manifest.json", ".", ".."}:
        raise ValueError(f"file name not usable in a checkpoint: {name!r}")
    return checkpoint_prefix(window, hotkey) + name


def validator_state_key(window: int, hotkey: str) -> str:
    """A validator's :class:`ValidatorState` after evaluating ``window`` (its own store)."""
    return f"{_PREFIX}/validator-state/{_window(window)}/{_safe(hotkey)}.json"


def _window(window: int) -> str:
    if not 0 <= window < 10**10:
        raise ValueError(f"window out of key range: {window}")
    return f"{window:010d}"


def window_of_key(key: str) -> int | None:
    """The window a key belongs to, or None for keys that carry no window."""
    match = re.search(r"/(\d{10})/", key)
    return int(match.group(1)) if match else None


def protocol_prefix() -> str:
    return f"{_PREFIX}/"


# Every artifact folder under the protocol prefix, by the key builders above.
_FOLDERS = (
    "contributions", "reveals", "arrivals", "reports", "peer-sets", "aggregations",
    "checkpoints", "validator-state", "mirrors",
)  # fmt: skip
KEPT_FOLDERS = ("aggregations",)  # the contribution ledger: never pruned


def pruned_prefixes() -> tuple[str, ...]:
    """The folders retention prunes: every artifact folder but the aggregation records,
    which chain into the contribution ledger and are kept for good (SPEC section 3)."""
    return tuple(f"{_PREFIX}/{name}/" for name in _FOLDERS if name not in KEPT_FOLDERS)
