"""Helpers shared by the storage tests (imported as a top-level module, like
tests/protocol/protocol_helpers.py)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Coroutine
from typing import Any, TypeVar

from gauntlet.storage.base import ObjectInfo, ObjectStore
from gauntlet.storage.local_servers import LocalServer
from gauntlet.storage.retry import RetryPolicy
from gauntlet.storage.s3 import S3Credentials, S3Store

T = TypeVar("T")

RCLONE_KEYS = S3Credentials("gauntlettestkey", "gauntlettestsecret")
MOTO_KEYS = S3Credentials("testing", "testing")
PAGE_SIZE = 3  # small, so listing more than three keys must paginate
FAST_RETRY = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.05)

_bucket_ids = itertools.count()


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Tests are sync (no async plugin here); each runs its coroutine on a fresh loop."""
    return asyncio.run(coro)


def new_bucket() -> str:
    return f"bucket-{next(_bucket_ids):04d}"


def s3_store(server: LocalServer, bucket: str, **overrides: Any) -> S3Store:
    """A store on ``server`` with the server's keys; ``overrides`` replace S3Store options."""
    options: dict[str, Any] = {
        "endpoint_url": server.endpoint_url,
        "credentials": RCLONE_KEYS if server.name == "rclone" else MOTO_KEYS,
        "region": "us-east-1",
        "path_style": True,
        "page_size": PAGE_SIZE,
        "retry": FAST_RETRY,
        "max_workers": 4,
    }
    options.update(overrides)
    return S3Store(bucket, **options)


def new_s3_store(server: LocalServer, **overrides: Any) -> S3Store:
    """A store on a freshly created bucket of ``server``."""
    store = s3_store(server, new_bucket(), **overrides)
    run(store.create_bucket())
    return store


async def list_all(store: ObjectStore, prefix: str = "") -> list[ObjectInfo]:
    return [info async for info in store.list(prefix)]
