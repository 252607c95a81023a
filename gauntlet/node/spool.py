"""Sealed uploads a validator has downloaded, kept on disk until their window is judged.

The observer downloads every miner's sealed upload while the window is open, but can only
open it after the reveals, a window later. Kept in memory, that is one payload per miner
per open window: at 256 miners and the 64 MiB payload cap, gigabytes, which any registered
miner can make real by uploading junk of the maximum size. So a download streams straight
to a file here (the store enforces the size cap while reading), its signed header is
checked with at most ``payloads_in_flight`` objects in memory at once (a shared
:class:`asyncio.Semaphore`), and only the checked header, the file's digest and its path
stay in memory. The window's judgement later opens them one at a time.

The directory is the validator's own scratch space: it is emptied at start (nothing in it
outlives the windows being observed) and each window's folder is removed once the
validator has judged the window (not by the observer's clock: a validator catching up
after a restart judges windows well behind the head, from files fetched here).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gauntlet.storage.base import ObjectInfo, ObjectStore
from protocol.sealed import SealedObject, SealHeader, open_sealed


class SpoolDamaged(OSError):
    """A spooled file no longer has the digest it had when it was checked: local disk
    damage or tampering, never the miner's doing."""


@dataclass(frozen=True)
class SpooledSealed:
    """A sealed object whose header and ciphertext hash were checked, kept on disk."""

    header: SealHeader
    sha256: str  # of the whole object as stored
    path: Path

    def load(self) -> SealedObject:
        """The object back in memory, as :func:`~protocol.sealed.open_sealed` returned it."""
        raw = self.path.read_bytes()
        if hashlib.sha256(raw).hexdigest() != self.sha256:
            raise SpoolDamaged(f"{self.path}: changed on disk since it was checked")
        ciphertext = raw[len(raw) - self.header.ciphertext_size :]
        return SealedObject(self.header, ciphertext, self.sha256)


class Spool:
    """A directory of downloaded sealed objects, one subdirectory per window.

    ``root`` None: a private temp directory, removed by :meth:`close` (tests, benches)."""

    def __init__(self, root: Path | None = None, *, payloads_in_flight: int = 4) -> None:
        self.owned = root is None
        self.root = Path(tempfile.mkdtemp(prefix="gauntlet-spool-")) if root is None else root
        if not self.owned:  # leftovers of an earlier run belong to windows judged or lost
            shutil.rmtree(self.root, ignore_errors=True)
            self.root.mkdir(parents=True, exist_ok=True)
        self.in_memory = asyncio.Semaphore(payloads_in_flight)

    def path_for(self, window: int, uid: int, version: str) -> Path:
        """Where ``uid``'s upload for ``window`` in version ``version`` (an ETag: any
        characters) is kept."""
        name = hashlib.sha256(version.encode()).hexdigest()[:16]
        return self.root / str(window) / f"{uid}-{name}.sealed"

    async def fetch(
        self,
        store: ObjectStore,
        key: str,
        path: Path,
        *,
        max_bytes: int,
        if_match: str | None,
        hotkey: str,
        window: int,
        netuid: int,
    ) -> tuple[ObjectInfo, SpooledSealed]:
        """Download ``key`` to ``path`` and check it as :func:`open_sealed` does. Storage
        errors and :class:`~protocol.errors.ProtocolError` propagate; a file that fails its
        checks is removed."""
        info = await store.get_to_file(key, path, max_bytes=max_bytes, if_match=if_match)
        async with self.in_memory:  # hashing a large object in a thread: the loop stays free
            try:
                sealed = await asyncio.to_thread(
                    _check, path, hotkey=hotkey, window=window, netuid=netuid, max_bytes=max_bytes
                )
            except BaseException:
                path.unlink(missing_ok=True)
                raise
        return info, sealed

    def prune(self, keep_from_window: int) -> None:
        """Remove every window before ``keep_from_window``."""
        if not self.root.is_dir():
            return
        for child in self.root.iterdir():
            if child.name.isdigit() and int(child.name) < keep_from_window:
                shutil.rmtree(child, ignore_errors=True)

    def close(self) -> None:
        if self.owned:
            with contextlib.suppress(OSError):
                shutil.rmtree(self.root)


def _check(path: Path, *, hotkey: str, window: int, netuid: int, max_bytes: int) -> SpooledSealed:
    sealed = open_sealed(
        path.read_bytes(),
        expected_hotkey=hotkey,
        expected_window=window,
        expected_netuid=netuid,
        max_bytes=max_bytes,
    )
    return SpooledSealed(sealed.header, sealed.sha256, path)
