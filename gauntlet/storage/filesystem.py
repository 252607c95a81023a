"""``FilesystemStore``: the embedded default, a bucket as a directory.

Layout ``<root>/<bucket>/<key>``. Writes go to a temporary file, are fsynced
and renamed into place, so readers never see a partial object; put-if-absent
uses ``os.link``, which fails atomically when the target exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from gauntlet.storage.atomic_file import CHUNK_BYTES, fsync_dir, write_atomically
from gauntlet.storage.base import (
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    ObjectTooLarge,
    PreconditionFailed,
    StorageError,
)

_TMP_PREFIX = ".tmp-"


class FilesystemStore(ObjectStore):
    def __init__(self, root: str | Path, bucket: str, *, create: bool = True) -> None:
        """``create`` makes the bucket directory; a reader of a peer's bucket passes False,
        so a commitment can never make it create (or trip over) anything on disk."""
        if not bucket or "/" in bucket or bucket in {".", ".."}:
            raise ValueError(f"invalid bucket name {bucket!r}")
        self.root = Path(root)
        self.bucket = bucket
        self.base = (self.root / bucket).resolve()
        if create:
            self.base.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        if not key or key.startswith("/") or "\\" in key or "\x00" in key:
            raise StorageError(f"invalid key {key!r}")
        if any(part in {"", ".", ".."} for part in key.split("/")):
            raise StorageError(f"invalid key {key!r}")
        if any(part.startswith(_TMP_PREFIX) for part in key.split("/")):
            # listing hides temp files by this prefix, so such a key would vanish
            raise StorageError(f"invalid key {key!r}: {_TMP_PREFIX!r} is reserved")
        path = (self.base / key).resolve()
        if self.base not in path.parents:
            raise StorageError(f"key escapes the bucket: {key!r}")
        return path

    def _info(self, key: str, path: Path) -> ObjectInfo:
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFound(key) from None
        if not stat.S_ISREG(st.st_mode):  # "a" when only "a/b" exists: a prefix, not an object
            raise ObjectNotFound(key)
        return ObjectInfo(key=key, size=st.st_size, last_modified=st.st_mtime, etag=_etag(st))

    def _write_temp(self, path: Path, data: bytes | BinaryIO) -> str:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise StorageError(f"a parent of {path} is an object, not a prefix") from None
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_TMP_PREFIX)
        try:
            with os.fdopen(fd, "wb") as fh:
                if isinstance(data, bytes):
                    fh.write(data)
                else:
                    shutil.copyfileobj(data, fh, CHUNK_BYTES)
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:
            os.unlink(tmp)
            raise
        return tmp

    def _put(self, key: str, data: bytes | BinaryIO) -> ObjectInfo:
        path = self._path(key)
        tmp = self._write_temp(path, data)
        try:
            os.replace(tmp, path)
        except IsADirectoryError:
            os.unlink(tmp)
            raise StorageError(f"{key!r} is a prefix of other objects") from None
        fsync_dir(path.parent)  # the rename survives a crash only once the directory is synced
        return self._info(key, path)

    def _put_file(self, key: str, src: str | Path) -> ObjectInfo:
        with open(src, "rb") as fh:
            return self._put(key, fh)

    def _put_if_absent(self, key: str, data: bytes) -> ObjectInfo:
        path = self._path(key)
        tmp = self._write_temp(path, data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise PreconditionFailed(key) from None
        finally:
            os.unlink(tmp)
        fsync_dir(path.parent)
        return self._info(key, path)

    def _open(self, key: str) -> tuple[BinaryIO, os.stat_result]:
        path = self._path(key)
        try:
            fh = open(path, "rb")  # noqa: SIM115 - returned to the caller, who closes it
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFound(key) from None
        return fh, os.fstat(fh.fileno())

    def _get(self, key: str, max_bytes: int, if_match: str | None = None) -> bytes:
        fh, st = self._open(key)
        with fh:
            if if_match is not None and _etag(st) != if_match:
                raise PreconditionFailed(f"{key}: changed since version {if_match}")
            if st.st_size > max_bytes:
                raise ObjectTooLarge(f"{key}: {st.st_size} bytes, max {max_bytes}")
            data = fh.read(max_bytes + 1)
        if len(data) > max_bytes:  # grew between fstat and read: never return more than asked
            raise ObjectTooLarge(f"{key}: more than {max_bytes} bytes")
        return data

    def _get_to_file(
        self, key: str, dest: str | Path, max_bytes: int, if_match: str | None = None
    ) -> ObjectInfo:
        fh, st = self._open(key)
        with fh:
            if if_match is not None and _etag(st) != if_match:
                raise PreconditionFailed(f"{key}: changed since version {if_match}")
            if st.st_size > max_bytes:
                raise ObjectTooLarge(f"{key}: {st.st_size} bytes, max {max_bytes}")
            copied = 0

            def fill(out: BinaryIO) -> None:
                nonlocal copied
                while chunk := fh.read(min(CHUNK_BYTES, max_bytes + 1 - copied)):
                    copied += len(chunk)
                    if copied > max_bytes:
                        raise ObjectTooLarge(f"{key}: more than {max_bytes} bytes")
                    out.write(chunk)

            write_atomically(dest, fill)
        return ObjectInfo(key=key, size=copied, last_modified=st.st_mtime)

    def _get_range(self, key: str, start: int, length: int) -> bytes:
        if start < 0 or length < 0:
            raise ValueError(f"bad range start={start} length={length}")
        fh, _st = self._open(key)
        with fh:
            fh.seek(start)
            return fh.read(length)

    def _list(self, prefix: str) -> list[ObjectInfo]:
        out: list[ObjectInfo] = []
        for dirpath, _dirs, files in os.walk(self.base):
            for name in files:
                if name.startswith(_TMP_PREFIX):
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
        # absent, or only a prefix of other keys: nothing to delete
        with contextlib.suppress(FileNotFoundError, NotADirectoryError, IsADirectoryError):
            self._path(key).unlink()

    async def put(self, key: str, data: bytes) -> ObjectInfo:
        return await asyncio.to_thread(self._put, key, data)

    async def put_if_absent(self, key: str, data: bytes) -> ObjectInfo:
        return await asyncio.to_thread(self._put_if_absent, key, data)

    async def put_file(self, key: str, path: str | Path) -> ObjectInfo:
        return await asyncio.to_thread(self._put_file, key, path)

    async def get(self, key: str, *, max_bytes: int, if_match: str | None = None) -> bytes:
        return await asyncio.to_thread(self._get, key, max_bytes, if_match)

    async def get_to_file(
        self, key: str, path: str | Path, *, max_bytes: int, if_match: str | None = None
    ) -> ObjectInfo:
        return await asyncio.to_thread(self._get_to_file, key, path, max_bytes, if_match)

    async def get_range(self, key: str, start: int, length: int) -> bytes:
        return await asyncio.to_thread(self._get_range, key, start, length)

    async def head(self, key: str) -> ObjectInfo:
        return await asyncio.to_thread(lambda: self._info(key, self._path(key)))

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        for info in await asyncio.to_thread(self._list, prefix):
            yield info

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._delete, key)


def _etag(st: os.stat_result) -> str:
    """A version name for a file: every put replaces the file (a new inode), so inode,
    size and nanosecond mtime together change with each version."""
    return f"{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"
