"""``FilesystemStore``: the embedded default, a bucket as a directory.

Layout ``<root>/<bucket>/<key>``. Writes go to a temporary file, are fsynced
and renamed into place, so readers never see a partial object; put-if-absent
uses ``os.link``, which fails atomically when the target exists.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from gauntlet.storage.base import (
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    ObjectTooLarge,
    PreconditionFailed,
    StorageError,
)


class FilesystemStore(ObjectStore):
    def __init__(self, root: str | Path, bucket: str) -> None:
        if not bucket or "/" in bucket or bucket in {".", ".."}:
            raise ValueError(f"invalid bucket name {bucket!r}")
        self.root = Path(root)
        self.bucket = bucket
        self.base = (self.root / bucket).resolve()
        self.base.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        if not key or key.startswith("/") or "\\" in key or "\x00" in key:
            raise StorageError(f"invalid key {key!r}")
        if any(part in {"", ".", ".."} for part in key.split("/")):
            raise StorageError(f"invalid key {key!r}")
        path = (self.base / key).resolve()
        if self.base not in path.parents:
            raise StorageError(f"key escapes the bucket: {key!r}")
        return path

    def _info(self, key: str, path: Path) -> ObjectInfo:
        try:
            st = path.stat()
        except FileNotFoundError:
            raise ObjectNotFound(key) from None
        return ObjectInfo(key=key, size=st.st_size, last_modified=st.st_mtime)

    def _write_temp(self, path: Path, data: bytes) -> str:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:
            os.unlink(tmp)
            raise
        return tmp

    def _put(self, key: str, data: bytes) -> ObjectInfo:
        path = self._path(key)
        tmp = self._write_temp(path, data)
        os.replace(tmp, path)
        return self._info(key, path)

    def _put_if_absent(self, key: str, data: bytes) -> ObjectInfo:
        path = self._path(key)
        tmp = self._write_temp(path, data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise PreconditionFailed(key) from None
        finally:
            os.unlink(tmp)
        return self._info(key, path)

    def _get(self, key: str, max_bytes: int) -> bytes:
        path = self._path(key)
        try:
            with open(path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size > max_bytes:
                    raise ObjectTooLarge(f"{key}: {size} bytes, max {max_bytes}")
                data = fh.read(max_bytes + 1)
        except FileNotFoundError:
            raise ObjectNotFound(key) from None
        if len(data) > max_bytes:  # grew between fstat and read: never return more than asked
            raise ObjectTooLarge(f"{key}: more than {max_bytes} bytes")
        return data

    def _get_range(self, key: str, start: int, length: int) -> bytes:
        path = self._path(key)
        try:
            with open(path, "rb") as fh:
                fh.seek(start)
                return fh.read(length)
        except FileNotFoundError:
            raise ObjectNotFound(key) from None

    def _list(self, prefix: str) -> list[ObjectInfo]:
        out: list[ObjectInfo] = []
        for dirpath, _dirs, files in os.walk(self.base):
            for name in files:
                if name.startswith(".tmp-"):
                    continue
                path = Path(dirpath) / name
                key = path.relative_to(self.base).as_posix()
                if key.startswith(prefix):
                    try:
                        out.append(self._info(key, path))
                    except ObjectNotFound:
                        continue  # deleted while listing
        out.sort(key=lambda info: info.key)
        return out

    def _delete(self, key: str) -> None:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            pass

    async def put(self, key: str, data: bytes) -> ObjectInfo:
        return await asyncio.to_thread(self._put, key, data)

    async def put_if_absent(self, key: str, data: bytes) -> ObjectInfo:
        return await asyncio.to_thread(self._put_if_absent, key, data)

    async def get(self, key: str, *, max_bytes: int) -> bytes:
        return await asyncio.to_thread(self._get, key, max_bytes)

    async def get_range(self, key: str, start: int, length: int) -> bytes:
        return await asyncio.to_thread(self._get_range, key, start, length)

    async def head(self, key: str) -> ObjectInfo:
        return await asyncio.to_thread(lambda: self._info(key, self._path(key)))

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        for info in await asyncio.to_thread(self._list, prefix):
            yield info

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._delete, key)
