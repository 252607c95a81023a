"""Object storage: one interface, a filesystem store and an S3-compatible store."""

from gauntlet.storage.base import (
    ObjectInfo,
    ObjectStore,
    StorageError,
    ObjectNotFound,
    AccessDenied,
    Throttled,
    ObjectTooLarge,
    StoreUnavailable,
    PreconditionFailed,
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
