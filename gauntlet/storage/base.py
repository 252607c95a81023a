"""The ``ObjectStore`` interface and its typed errors.

A store is one bucket. Methods are async; implementations that block (files,
boto3) run their I/O in threads. Timestamps are the *server's* (an object's
``last_modified``), which is what deadlines are judged by.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from gauntlet.storage.atomic_file import write_atomically


class StorageError(Exception):
    """Base class; ``reason`` is a stable slug for logs and metrics."""

    reason = "storage"


class ObjectNotFound(StorageError):
    reason = "not_found"


class AccessDenied(StorageError):
    reason = "forbidden"


class Throttled(StorageError):
    reason = "throttled"


class ObjectTooLarge(StorageError):
    reason = "too_large"


class BadAnswer(StorageError):
    """The server answered, but not as an S3 server must (a required header missing or
    garbled): the store's owner is at fault, not the network, so it is not retried."""

    reason = "bad_answer"


class StoreUnavailable(StorageError):
    reason = "unavailable"


class PreconditionFailed(StorageError):
    """put-if-absent found the key already present, or a pinned get found another version."""

    reason = "exists"


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    last_modified: float  # unix seconds, server clock
    etag: str = ""  # names this version of the object (opaque; "" where a listing has none)


class ObjectStore(ABC):
    """One bucket of objects addressed by string keys."""

    @abstractmethod
    async def put(self, key: str, data: bytes) -> ObjectInfo:
        """Store atomically: readers see the old object or the whole new one."""

    @abstractmethod
    async def put_if_absent(self, key: str, data: bytes) -> ObjectInfo:
        """Store only if ``key`` is absent; raise :class:`PreconditionFailed` otherwise."""

    @abstractmethod
    async def get(self, key: str, *, max_bytes: int, if_match: str | None = None) -> bytes:
        """Whole object; :class:`ObjectTooLarge` if it exceeds ``max_bytes`` (checked before
        reading). With ``if_match`` (an etag from :meth:`head`) the read is pinned to that
        version: :class:`PreconditionFailed` if the object has changed since."""

    @abstractmethod
    async def get_range(self, key: str, start: int, length: int) -> bytes:
        """``length`` bytes from ``start`` (fewer at the end of the object)."""

    @abstractmethod
    async def head(self, key: str) -> ObjectInfo:
        """Size, server-side last-modified time and etag; :class:`ObjectNotFound` if absent."""

    @abstractmethod
    def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Objects whose key starts with ``prefix``, in key order, paginated internally."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Remove ``key``; deleting an absent key is not an error."""

    async def put_file(self, key: str, path: str | Path) -> ObjectInfo:
        """Store the local file at ``path``, atomically like :meth:`put`.

        This default reads the file into memory; stores override it to stream.
        """
        data = await asyncio.to_thread(Path(path).read_bytes)
        return await self.put(key, data)

    async def get_to_file(
        self, key: str, path: str | Path, *, max_bytes: int, if_match: str | None = None
    ) -> ObjectInfo:
        """Write the object to the local file ``path`` (whole or not at all).

        :class:`ObjectTooLarge` if it exceeds ``max_bytes`` (checked before
        reading); :class:`PreconditionFailed` as :meth:`get` with ``if_match``.
        This default buffers in memory; stores override it to stream.
        """
        info = await self.head(key)
        data = await self.get(key, max_bytes=max_bytes, if_match=if_match)
        await asyncio.to_thread(write_atomically, path, lambda fh: fh.write(data))
        return ObjectInfo(key=key, size=len(data), last_modified=info.last_modified)

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and threads."""
