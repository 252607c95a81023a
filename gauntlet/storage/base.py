"""The ``ObjectStore`` interface and its typed errors.

A store is one bucket. Methods are async; implementations that block (files,
boto3) run their I/O in threads. Timestamps are the *server's* (an object's
``last_modified``), which is what deadlines are judged by.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass


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


class StoreUnavailable(StorageError):
    reason = "unavailable"


class PreconditionFailed(StorageError):
    """put-if-absent found the key already present."""

    reason = "exists"


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    last_modified: float  # unix seconds, server clock


class ObjectStore(ABC):
    """One bucket of objects addressed by string keys."""

    @abstractmethod
    async def put(self, key: str, data: bytes) -> ObjectInfo:
        """Store atomically: readers see the old object or the whole new one."""

    @abstractmethod
    async def put_if_absent(self, key: str, data: bytes) -> ObjectInfo:
        """Store only if ``key`` is absent; raise :class:`PreconditionFailed` otherwise."""

    @abstractmethod
    async def get(self, key: str, *, max_bytes: int) -> bytes:
        """Whole object; :class:`ObjectTooLarge` if it exceeds ``max_bytes`` (checked before reading)."""

    @abstractmethod
    async def get_range(self, key: str, start: int, length: int) -> bytes:
        """``length`` bytes from ``start`` (fewer at the end of the object)."""

    @abstractmethod
    async def head(self, key: str) -> ObjectInfo:
        """Size and server-side last-modified time; :class:`ObjectNotFound` if absent."""

    @abstractmethod
    def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Objects whose key starts with ``prefix``, in key order, paginated internally."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Remove ``key``; deleting an absent key is not an error."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and threads."""
