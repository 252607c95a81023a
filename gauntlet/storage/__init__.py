"""Object storage: one interface, a filesystem store and an S3-compatible store."""

from gauntlet.storage.base import (
    AccessDenied,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    ObjectTooLarge,
    PreconditionFailed,
    StorageError,
    StoreUnavailable,
    Throttled,
)

__all__ = [
    "ObjectInfo",
    "ObjectStore",
    "StorageError",
    "ObjectNotFound",
    "AccessDenied",
    "Throttled",
    "ObjectTooLarge",
    "StoreUnavailable",
    "PreconditionFailed",
]
