"""One node per hotkey and state directory: an exclusive ``flock`` held for the process's life.

Two miners on one hotkey overwrite each other's uploads and error-feedback state; two
validators on one hotkey race on the same state and journal files. The lock file
``<state_dir>/node-<hotkey>.lock`` holds the PID of its holder for the refusal message;
the kernel releases the lock when the process ends, however it ends, so a crash leaves
nothing to clean up.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

# Open lock files by path, kept open (hence locked) until the process exits. A flock
# belongs to the open file, so a second open in this process would conflict with the first.
_HELD: dict[Path, int] = {}


class NodeLockError(RuntimeError):
    """Another live process runs a node with this hotkey and state directory."""


def lock_path(state_dir: Path, hotkey: str) -> Path:
    return state_dir / f"node-{hotkey}.lock"


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    except OSError:
        return "?"
    return text or "?"


def lock_node(state_dir: Path | str, hotkey: str) -> Path:
    """Take the node lock for ``hotkey`` under ``state_dir`` (created if missing) or raise
    :class:`NodeLockError` naming the PID that holds it. Taking it again in the process that
    holds it is a no-op. Returns the lock file's path."""
    path = lock_path(Path(state_dir).expanduser(), hotkey).resolve()
    if path in _HELD:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise NodeLockError(
            f"another node (pid {holder}) already runs hotkey {hotkey} with state directory "
            f"{path.parent} (lock {path}); stop it first, or give this one its own hotkey"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _HELD[path] = fd
    return path


def release_node(state_dir: Path | str, hotkey: str) -> None:
    """Give the lock back before the process ends (tests; a node keeps it until exit)."""
    path = lock_path(Path(state_dir).expanduser(), hotkey).resolve()
    fd = _HELD.pop(path, None)
    if fd is not None:
        os.close(fd)
