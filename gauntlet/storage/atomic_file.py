"""Write a local file so that it appears whole or not at all.

Shared by the stores' ``get_to_file``: a crash or an error midway leaves the
destination untouched (only a ``.tmp-`` sibling, removed on error).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

CHUNK_BYTES = 8 * 1024 * 1024
TEMP_PREFIX = ".tmp-"


def write_atomically(dest: str | Path, fill: Callable[[BinaryIO], object]) -> None:
    """Call ``fill(fh)`` on a temp file next to ``dest``, fsync it, rename it over ``dest``."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # The temp name starts with the destination's, so an owner cleaning up after a
    # crash (temp_files) removes its own leftovers and never another writer's.
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f"{TEMP_PREFIX}{dest.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fill(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(dest.parent)


def fsync_dir(path: Path) -> None:
    """Make a rename durable: the new directory entry is only on disk once the directory is."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_files(dest: str | Path) -> list[Path]:
    """Leftover temp files of :func:`write_atomically` for ``dest`` (after a crash)."""
    dest = Path(dest)
    return sorted(dest.parent.glob(f"{TEMP_PREFIX}{dest.name}.*"))
