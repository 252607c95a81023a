"""``S3Store``: one bucket on an S3-compatible server (R2, AWS S3, SeaweedFS, MinIO).

boto3 is blocking, so every call runs on a bounded ``ThreadPoolExecutor`` whose
size is also the HTTP connection-pool size: one connection per worker, none
idle, none waited for. boto3's own retries are switched off; transient failures
are retried in exactly one place, :func:`gauntlet.storage.retry.with_retries`.

Conditional put (put-if-absent) uses ``If-None-Match: *``: AWS S3 (since 2024),
R2 and MinIO answer 412 when the key exists. Servers differ:

* a server that *rejects* the header (501) raises :class:`ConditionalPutUnsupported`;
* a server that *ignores* it (observed: ``rclone serve s3`` 1.75 overwrites and
  answers 200) cannot be detected by the client.

For those, ``conditional_put="check_then_put"`` is the explicit fallback: HEAD,
then PUT if absent. It is racy between two concurrent writers of one key, so
it is only sound where a key has a single writer (a node's own bucket).
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from gauntlet.storage.atomic_file import CHUNK_BYTES, write_atomically
from gauntlet.storage.base import (
    AccessDenied,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    ObjectTooLarge,
    PreconditionFailed,
    StorageError,
    StoreUnavailable,
)
from gauntlet.storage.retry import RetryPolicy, with_retries
from gauntlet.storage.s3_errors import map_botocore_error

T = TypeVar("T")

MAX_SINGLE_PUT_BYTES = 5 * 1024**3  # S3's (and R2's) limit for one PUT request
ConditionalPut = Literal["native", "check_then_put"]

# One boto3 session for all stores: it caches the parsed S3 service model, which
# otherwise costs a few hundred ms per store (a validator opens one per peer).
_SESSION = boto3.session.Session()
_SESSION_LOCK = threading.Lock()


@dataclass(frozen=True)
class S3Credentials:
    """One key pair. A node holds a write pair for its own bucket and publishes a
    read-only pair on chain; keeping them as separate values keeps them apart."""

    access_key_id: str
    secret_access_key: str = field(repr=False)


@dataclass
class TransferStats:
    """Body bytes moved by this store (for metrics and for tests that must prove a
    refused download read nothing)."""

    bytes_downloaded: int = 0
    bytes_uploaded: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, *, down: int = 0, up: int = 0) -> None:
        with self._lock:
            self.bytes_downloaded += down
            self.bytes_uploaded += up


class S3Store(ObjectStore):
    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None,
        credentials: S3Credentials,
        region: str = "auto",
        path_style: bool = False,
        read_only: bool = False,
        max_workers: int = 16,
        page_size: int = 1000,
        retry: RetryPolicy | None = None,
        conditional_put: ConditionalPut = "native",
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 60.0,
    ) -> None:
        """``endpoint_url`` None means AWS S3; ``region`` "auto" suits R2, AWS wants the
        bucket's region. ``path_style`` puts the bucket in the URL path (MinIO,
        SeaweedFS, loopback servers) instead of the host name."""
        if max_workers < 1 or not 1 <= page_size <= 1000:
            raise ValueError("max_workers must be >= 1 and page_size in [1, 1000]")
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.read_only = read_only
        self.page_size = page_size
        self.retry = retry or RetryPolicy()
        self.conditional_put = conditional_put
        self.stats = TransferStats()
        config = Config(
            region_name=region,
            signature_version="s3v4",
            s3={"addressing_style": "path" if path_style else "auto"},
            retries={"total_max_attempts": 1, "mode": "standard"},  # retry.py retries
            max_pool_connections=max_workers,
            connect_timeout=connect_timeout_s,
            read_timeout=read_timeout_s,
            # botocore >= 1.36 adds CRC checksums by default; R2, MinIO and rclone
            # reject or mis-answer some of them (rclone sends a whole-object
            # checksum on ranged GETs), so only send/check them where required.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        with _SESSION_LOCK:  # client creation is not thread-safe; calls on the client are
            self._client: Any = _SESSION.client(
                "s3",
                endpoint_url=endpoint_url,
                aws_access_key_id=credentials.access_key_id,
                aws_secret_access_key=credentials.secret_access_key,
                config=config,
            )
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="s3")

    def __repr__(self) -> str:
        mode = "ro" if self.read_only else "rw"
        return f"S3Store({self.endpoint_url or 'aws'}/{self.bucket}, {mode})"

    # -- plumbing -------------------------------------------------------------

    async def _call(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the pool, typed errors, bounded retries."""
        loop = asyncio.get_running_loop()
        task = functools.partial(self._typed, what, fn, *args)
        return await with_retries(lambda: loop.run_in_executor(self._pool, task), self.retry)

    @staticmethod
    def _typed(what: str, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        except StorageError:
            raise
        except Exception as exc:
            raise map_botocore_error(exc, what) from exc

    def _writable(self, key: str) -> None:
        if self.read_only:
            raise AccessDenied(f"{self!r} is read-only, refusing to write {key!r}")

    def _where(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _read_body(self, key: str, body: Any, size: int, sink: Callable[[bytes], object]) -> int:
        """Stream ``body`` (``size`` bytes announced) into ``sink``; never more than ``size``."""
        got = 0
        try:
            while chunk := body.read(min(CHUNK_BYTES, size + 1 - got)):
                got += len(chunk)
                self.stats.add(down=len(chunk))
                if got > size:
                    raise StorageError(f"{self._where(key)}: body longer than Content-Length")
                sink(chunk)
        finally:
            body.close()
        if got != size:  # connection cut short: transient, worth a retry
            raise StoreUnavailable(f"{self._where(key)}: body cut at {got} of {size} bytes")
        return got

    # -- blocking operations (run on the pool) --------------------------------

    def _put(self, key: str, body: bytes | BinaryIO, size: int, **extra: Any) -> ObjectInfo:
        self._client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentLength=size, **extra)
        self.stats.add(up=size)
        # A PUT answer carries no Last-Modified, and deadlines are judged by the
        # server's clock, so one HEAD fetches it.
        return self._head(key)

    def _put_file(self, key: str, path: str | Path) -> ObjectInfo:
        size = os.path.getsize(path)
        if size > MAX_SINGLE_PUT_BYTES:
            raise ObjectTooLarge(f"{path}: {size} bytes, one PUT takes {MAX_SINGLE_PUT_BYTES}")
        with open(path, "rb") as fh:  # reopened per attempt, so a retry starts at byte 0
            return self._put(key, fh, size)

    def _check_then_put(self, key: str, data: bytes) -> ObjectInfo:
        try:
            self._head(key)
        except ClientError as exc:
            if not isinstance(map_botocore_error(exc, self._where(key)), ObjectNotFound):
                raise
            return self._put(key, data, len(data))
        raise PreconditionFailed(self._where(key))

    def _get_object(self, key: str, max_bytes: int, **extra: Any) -> dict[str, Any]:
        resp: dict[str, Any] = self._client.get_object(Bucket=self.bucket, Key=key, **extra)
        pinned = extra.get("IfMatch")
        if pinned is not None and str(resp.get("ETag", "")) != pinned:
            # A server that ignores If-Match (rclone serve s3 1.75 does) answers with the
            # new version: refuse it here, as a conforming server's 412 would.
            resp["Body"].close()
            raise PreconditionFailed(f"{self._where(key)}: changed since version {pinned}")
        size = int(resp["ContentLength"])
        if size > max_bytes:
            # Decided on the header alone: closing drops the connection before
            # the body is read, so an oversized object costs no bandwidth.
            resp["Body"].close()
            raise ObjectTooLarge(f"{self._where(key)}: {size} bytes, max {max_bytes}")
        return resp

    def _get(self, key: str, max_bytes: int, if_match: str | None = None) -> bytes:
        extra = {} if if_match is None else {"IfMatch": if_match}
        resp = self._get_object(key, max_bytes, **extra)
        parts: list[bytes] = []
        self._read_body(key, resp["Body"], int(resp["ContentLength"]), parts.append)
        return b"".join(parts)

    def _get_to_file(
        self, key: str, path: str | Path, max_bytes: int, if_match: str | None = None
    ) -> ObjectInfo:
        extra = {} if if_match is None else {"IfMatch": if_match}
        resp = self._get_object(key, max_bytes, **extra)
        size = int(resp["ContentLength"])
        write_atomically(path, lambda fh: self._read_body(key, resp["Body"], size, fh.write))
        return ObjectInfo(key=key, size=size, last_modified=resp["LastModified"].timestamp())

    def _get_range(self, key: str, start: int, length: int) -> bytes:
        try:
            resp = self._get_object(key, length, Range=f"bytes={start}-{start + length - 1}")
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") != 416:
                raise
            # start at or past the end: the filesystem's answer is b"" (a missing
            # key is still ObjectNotFound: servers answer 404 before 416)
            return b""
        parts: list[bytes] = []
        self._read_body(key, resp["Body"], int(resp["ContentLength"]), parts.append)
        return b"".join(parts)

    def _head(self, key: str) -> ObjectInfo:
        resp = self._client.head_object(Bucket=self.bucket, Key=key)
        return ObjectInfo(
            key=key,
            size=int(resp["ContentLength"]),
            last_modified=resp["LastModified"].timestamp(),
            etag=str(resp.get("ETag", "")),
        )

    def _list_page(self, prefix: str, token: str | None) -> tuple[list[ObjectInfo], str | None]:
        args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": self.page_size}
        if token:
            args["ContinuationToken"] = token
        resp = self._client.list_objects_v2(**args)
        infos = [
            ObjectInfo(
                key=o["Key"], size=int(o["Size"]), last_modified=o["LastModified"].timestamp()
            )
            for o in resp.get("Contents", [])
        ]
        more = resp.get("IsTruncated") and resp.get("NextContinuationToken")
        return infos, more or None

    def _create_bucket(self) -> None:
        try:
            self._client.create_bucket(Bucket=self.bucket)
        except self._client.exceptions.BucketAlreadyOwnedByYou:
            pass
        except self._client.exceptions.BucketAlreadyExists:
            self._client.head_bucket(Bucket=self.bucket)  # exists: fine if it is ours to use

    # -- the ObjectStore interface --------------------------------------------

    async def put(self, key: str, data: bytes) -> ObjectInfo:
        self._writable(key)
        return await self._call(self._where(key), self._put, key, data, len(data))

    async def put_if_absent(self, key: str, data: bytes) -> ObjectInfo:
        self._writable(key)
        if self.conditional_put == "check_then_put":
            return await self._call(self._where(key), self._check_then_put, key, data)
        return await self._call(
            self._where(key), functools.partial(self._put, IfNoneMatch="*"), key, data, len(data)
        )

    async def put_file(self, key: str, path: str | Path) -> ObjectInfo:
        """Streams the file in one PUT (up to 5 GiB; larger raises :class:`ObjectTooLarge`)."""
        self._writable(key)
        return await self._call(self._where(key), self._put_file, key, path)

    async def get(self, key: str, *, max_bytes: int, if_match: str | None = None) -> bytes:
        return await self._call(self._where(key), self._get, key, max_bytes, if_match)

    async def get_to_file(
        self, key: str, path: str | Path, *, max_bytes: int, if_match: str | None = None
    ) -> ObjectInfo:
        return await self._call(self._where(key), self._get_to_file, key, path, max_bytes, if_match)

    async def get_range(self, key: str, start: int, length: int) -> bytes:
        if start < 0 or length < 0:
            raise ValueError(f"bad range start={start} length={length}")
        if length == 0:
            await self.head(key)  # same answer as the filesystem: b"", or ObjectNotFound
            return b""
        return await self._call(self._where(key), self._get_range, key, start, length)

    async def head(self, key: str) -> ObjectInfo:
        return await self._call(self._where(key), self._head, key)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        token: str | None = None
        while True:
            infos, token = await self._call(
                f"s3://{self.bucket}/{prefix}*", self._list_page, prefix, token
            )
            for info in infos:
                yield info
            if token is None:
                return

    async def delete(self, key: str) -> None:
        self._writable(key)
        # S3 answers 204 for an absent key; a 404 here means the bucket is missing
        await self._call(
            self._where(key),
            functools.partial(self._client.delete_object, Bucket=self.bucket, Key=key),
        )

    async def create_bucket(self) -> None:
        """Create the bucket if it does not exist (own bucket, local servers, tests)."""
        self._writable("")
        await self._call(f"s3://{self.bucket}", self._create_bucket)

    async def close(self) -> None:
        await asyncio.to_thread(self._pool.shutdown, wait=True)
        self._client.close()
