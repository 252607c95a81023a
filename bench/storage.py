"""Storage throughput: put/get of one large payload and a concurrent gather, per store.

Stores: FilesystemStore, moto_server and ``rclone serve s3`` (both real servers on
loopback), next to raw disk figures (plain write+fsync and read of the same sizes)
on the same machine. Prints one JSON object.

    .venv/bin/python bench/storage.py            # 64 MB payload, 16 x 16 MB gather
    .venv/bin/python bench/storage.py --quick    # small sizes, a smoke test
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from bench.machine import machine_info  # noqa: E402
from gauntlet.storage.base import ObjectStore  # noqa: E402
from gauntlet.storage.filesystem import FilesystemStore  # noqa: E402
from gauntlet.storage.local_servers import LocalServer, start_moto, start_rclone  # noqa: E402
from gauntlet.storage.s3 import S3Credentials, S3Store  # noqa: E402

MB = 1024 * 1024
KEYS = S3Credentials("benchaccesskey", "benchsecretkey")


def mb_per_s(nbytes: int, seconds: float) -> float:
    return round(nbytes / MB / seconds, 1) if seconds > 0 else float("inf")


def raw_disk(workdir: Path, big: int, count: int, each: int) -> dict[str, float]:
    """Plain files: write+fsync then read, sequentially (the page cache is warm on read)."""
    payload = os.urandom(big)
    path = workdir / "raw.bin"
    t = time.perf_counter()
    with open(path, "wb") as fh:
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())
    write_s = time.perf_counter() - t
    t = time.perf_counter()
    path.read_bytes()
    read_s = time.perf_counter() - t
    small = os.urandom(each)
    paths = [workdir / f"raw-{i}.bin" for i in range(count)]
    t = time.perf_counter()
    for p in paths:
        with open(p, "wb") as fh:
            fh.write(small)
            fh.flush()
            os.fsync(fh.fileno())
    many_write_s = time.perf_counter() - t
    t = time.perf_counter()
    for p in paths:
        p.read_bytes()
    many_read_s = time.perf_counter() - t
    return {
        "write_MBps": mb_per_s(big, write_s),
        "read_MBps": mb_per_s(big, read_s),
        "many_write_MBps": mb_per_s(count * each, many_write_s),
        "many_read_MBps": mb_per_s(count * each, many_read_s),
    }


async def measure(store: ObjectStore, big: int, count: int, each: int) -> dict[str, float]:
    payload = os.urandom(big)
    t = time.perf_counter()
    await store.put("bench/big", payload)
    put_s = time.perf_counter() - t
    t = time.perf_counter()
    got = await store.get("bench/big", max_bytes=big)
    get_s = time.perf_counter() - t
    assert got == payload
    blobs = {f"bench/gather/{i:02d}": os.urandom(each) for i in range(count)}
    t = time.perf_counter()
    await asyncio.gather(*(store.put(k, v) for k, v in blobs.items()))
    put_many_s = time.perf_counter() - t
    t = time.perf_counter()
    results = await asyncio.gather(*(store.get(k, max_bytes=each) for k in blobs))
    gather_s = time.perf_counter() - t
    assert results == list(blobs.values())
    await store.close()
    return {
        "put_MBps": mb_per_s(big, put_s),
        "get_MBps": mb_per_s(big, get_s),
        "concurrent_put_MBps": mb_per_s(count * each, put_many_s),
        "gather_MBps": mb_per_s(count * each, gather_s),
    }


async def s3_store(server: LocalServer, bucket: str, workers: int) -> S3Store:
    creds = KEYS if server.name == "rclone" else S3Credentials("testing", "testing")
    store = S3Store(
        bucket,
        endpoint_url=server.endpoint_url,
        credentials=creds,
        region="us-east-1",
        path_style=True,
        max_workers=workers,
    )
    await store.create_bucket()
    return store


async def run_all(workdir: Path, big: int, count: int, each: int) -> dict[str, Any]:
    stores: dict[str, Any] = {}
    stores["filesystem"] = await measure(FilesystemStore(workdir / "fs", "bench"), big, count, each)
    rclone_root = workdir / "rclone"
    rclone_root.mkdir()
    servers = [
        start_moto(workdir),
        start_rclone(rclone_root, KEYS.access_key_id, KEYS.secret_access_key),
    ]
    try:
        for server in servers:
            store = await s3_store(server, "bench", workers=count)
            stores[server.name] = await measure(store, big, count, each)
    finally:
        for server in servers:
            server.stop()
    return stores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    args = parser.parse_args()
    big, count, each = (8 * MB, 4, 2 * MB) if args.quick else (64 * MB, 16, 16 * MB)
    with tempfile.TemporaryDirectory(prefix="gauntlet-bench-") as tmp:
        workdir = Path(tmp)
        raw = raw_disk(workdir, big, count, each)
        stores = asyncio.run(run_all(workdir, big, count, each))
    report = {
        "machine": machine_info(),
        "sizes": {"payload_MB": big / MB, "gather_count": count, "gather_each_MB": each / MB},
        "notes": "MB = MiB; servers on loopback; raw read is from a warm page cache",
        "raw_disk": raw,
        "stores": stores,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
