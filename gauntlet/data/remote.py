"""Datasets in object storage: publish a prepared directory under a key
prefix, and fetch one back with every token file checked against the manifest.

Layout under ``prefix``: the directory's own file names, ``<prefix>/shard-00000.bin``
... and ``<prefix>/manifest.json``. The manifest is uploaded last, so a
reader that finds it finds every shard it lists; on download it is read first
and is the only thing trusted, after its id has been checked against its
fields (and against ``dataset_id`` when the caller knows the network's).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from gauntlet.data.manifest import MANIFEST_NAME, DatasetError, DatasetManifest, parse_manifest
from gauntlet.data.pages import PageDataset, file_sha256, token_dtype
from gauntlet.storage.base import ObjectNotFound, ObjectStore, ObjectTooLarge

MAX_MANIFEST_BYTES = 1 << 20  # a manifest lists shards: kilobytes, even for terabytes
CONCURRENT_TRANSFERS = 4


def _key(prefix: str, name: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/{name}" if prefix else name


async def upload_dataset(dataset_dir: Path, store: ObjectStore, prefix: str) -> DatasetManifest:
    """Hash-check the local dataset (DatasetError if it does not match its
    manifest: never publish corrupt data), upload its token files, then its
    manifest. Returns the manifest."""
    dataset_dir = Path(dataset_dir)
    dataset = await asyncio.to_thread(PageDataset, dataset_dir, verify=True)
    manifest = dataset.manifest
    limit = asyncio.Semaphore(CONCURRENT_TRANSFERS)

    async def put(name: str) -> None:
        async with limit:
            await store.put_file(_key(prefix, name), dataset_dir / name)

    await asyncio.gather(*(put(name) for name, _, _ in manifest.files()))
    await store.put(_key(prefix, MANIFEST_NAME), manifest.to_json().encode())
    return manifest


async def download_dataset(
    store: ObjectStore, prefix: str, out_dir: Path, *, dataset_id: str | None = None
) -> PageDataset:
    """Fetch the dataset under ``prefix`` into ``out_dir`` and open it.

    Every token file is checked for size and sha256 against the manifest
    before it takes its final name; a mismatch is a DatasetError naming the
    file. Files already in ``out_dir`` that match are kept, so an interrupted
    download resumes. ``out_dir`` gets its manifest.json last, so it is
    never a half-downloaded dataset. Raises DatasetError if the store's
    manifest is missing or invalid, is not ``dataset_id`` (when given), or if
    ``out_dir`` already holds a different dataset."""
    out_dir = Path(out_dir)
    where = f"{prefix!r} in the store"
    try:
        raw = await store.get(_key(prefix, MANIFEST_NAME), max_bytes=MAX_MANIFEST_BYTES)
    except ObjectNotFound:
        raise DatasetError(f"no {MANIFEST_NAME} under {where}") from None
    except ObjectTooLarge as e:
        raise DatasetError(f"{MANIFEST_NAME} under {where} is too large: {e}") from e
    manifest = parse_manifest(raw, where)
    if dataset_id is not None and manifest.dataset_id != dataset_id:
        raise DatasetError(f"{where} holds dataset {manifest.dataset_id}, not {dataset_id}")
    local = out_dir / MANIFEST_NAME
    if local.exists():
        existing = parse_manifest(local.read_bytes(), str(out_dir))
        if existing.dataset_id != manifest.dataset_id:
            raise DatasetError(f"{out_dir} already holds dataset {existing.dataset_id}")
    out_dir.mkdir(parents=True, exist_ok=True)
    itemsize = token_dtype(manifest.dtype).itemsize
    limit = asyncio.Semaphore(CONCURRENT_TRANSFERS)

    async def fetch(name: str, pages: int, sha256: str) -> None:
        size = pages * manifest.page_tokens * itemsize
        async with limit:
            await _fetch_file(store, _key(prefix, name), out_dir / name, size, sha256)

    await asyncio.gather(*(fetch(*f) for f in manifest.files()))
    tmp = out_dir / f"{MANIFEST_NAME}.tmp"
    tmp.write_text(manifest.to_json())
    os.replace(tmp, local)
    # Every file was just hashed: opening only re-checks sizes.
    return await asyncio.to_thread(PageDataset, out_dir)


async def _fetch_file(store: ObjectStore, key: str, dest: Path, size: int, sha256: str) -> None:
    if await asyncio.to_thread(_matches, dest, size, sha256):
        return
    # Downloaded beside its final name and renamed only once it checks out, so
    # a tampered or truncated object never sits under a shard's name.
    part = dest.with_name(dest.name + ".part")
    try:
        await store.get_to_file(key, part, max_bytes=size)
    except ObjectNotFound:
        raise DatasetError(f"{dest.name}: missing from the store ({key})") from None
    except ObjectTooLarge:
        raise DatasetError(f"{dest.name}: larger in the store than the manifest says") from None
    if not await asyncio.to_thread(_matches, part, size, sha256):
        part.unlink()
        raise DatasetError(f"{dest.name}: does not match the manifest's size and sha256 ({key})")
    os.replace(part, dest)


def _matches(path: Path, size: int, sha256: str) -> bool:
    try:
        if path.stat().st_size != size:
            return False
    except FileNotFoundError:
        return False
    return file_sha256(path) == sha256
