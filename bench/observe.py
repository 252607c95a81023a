"""Cost of sealed contributions: sealing MB/s, and the validator's observation polling.

``seal``: MB/s of ``seal_payload`` (encrypt + hashes + sign), ``open_sealed`` (hashes +
signature check) and ``unseal`` (decrypt + hash) per payload size, best of N, each
also as a number of ``hashlib.sha256`` passes over the same bytes (same run).

``polling``: the real ``Observer.poll_round()`` against N miners on one ``moto_server``
on loopback, one bucket per miner (read through ``store_from_commitment``, as a
validator does), each holding one sealed upload for the window. A fixed head block
inside the window stands in for the chain. Reports the first round (HEAD + GET of
every upload), a steady round (HEAD only: the observer reuses known versions) and
the derived requests per window at the default poll interval. Prints one JSON object.

    .venv/bin/python bench/observe.py                                   # defaults, ~1 min
    .venv/bin/python bench/observe.py --sizes 65536 --uids 4 --repeats 1  # smoke test
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305  # noqa: E402

from bench.machine import machine_info  # noqa: E402
from gauntlet.config.schema import ValidatorConfig  # noqa: E402
from gauntlet.node.observer import MAX_CONCURRENT_FETCHES, Observer  # noqa: E402
from gauntlet.node.peers import Peer  # noqa: E402
from gauntlet.storage.factory import store_from_commitment  # noqa: E402
from gauntlet.storage.local_servers import start_moto  # noqa: E402
from gauntlet.storage.s3 import S3Credentials, S3Store  # noqa: E402
from protocol.commitment import S3Commitment  # noqa: E402
from protocol.container import Limits  # noqa: E402
from protocol.keys import contribution_key  # noqa: E402
from protocol.sealed import open_sealed, seal_payload, unseal  # noqa: E402
from protocol.signing import keypair_from_uri  # noqa: E402
from protocol.windows import Timeline, window_start  # noqa: E402

MB = 1024 * 1024
NETUID = 3
WINDOW = 10
MOTO_KEYS = S3Credentials("testing", "testing")  # moto accepts any pair
# Block time x blocks per window of the networks the derived per-window cost is for.
NETWORKS = {"finney": (10, 12.0), "localnet_0.5s": (10, 0.5), "localnet_1s": (10, 1.0)}


def best_seconds(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def mb_per_s(nbytes: int, seconds: float) -> float:
    return round(nbytes / MB / seconds, 1)


def seal_figures(size: int, repeats: int) -> dict[str, Any]:
    """MB/s (of payload bytes) of each sealing step, and its cost in sha256 passes."""
    signer = keypair_from_uri("//miner/0")
    payload = os.urandom(size)
    nonce = os.urandom(12)
    sealed, key = seal_payload(payload, netuid=NETUID, window=WINDOW, uid=0, signer=signer)
    opened = open_sealed(
        sealed,
        expected_hotkey=signer.ss58_address,
        expected_window=WINDOW,
        expected_netuid=NETUID,
        max_bytes=len(sealed),
    )
    assert unseal(opened, key) == payload
    steps: dict[str, Callable[[], object]] = {
        "seal": lambda: seal_payload(payload, netuid=NETUID, window=WINDOW, uid=0, signer=signer),
        "open_sealed": lambda: open_sealed(
            sealed,
            expected_hotkey=signer.ss58_address,
            expected_window=WINDOW,
            expected_netuid=NETUID,
            max_bytes=len(sealed),
        ),
        "unseal": lambda: unseal(opened, key),
    }
    sha_s = best_seconds(lambda: hashlib.sha256(payload).digest(), repeats)
    aead = ChaCha20Poly1305(key)
    encrypt_s = best_seconds(lambda: aead.encrypt(nonce, payload, b""), repeats)
    row: dict[str, Any] = {
        "payload_bytes": size,
        "sealed_bytes": len(sealed),
        "baseline_sha256_MBps": mb_per_s(size, sha_s),
        "baseline_chacha20poly1305_encrypt_MBps": mb_per_s(size, encrypt_s),
    }
    for name, fn in steps.items():
        seconds = best_seconds(fn, repeats)
        row[f"{name}_MBps"] = mb_per_s(size, seconds)
        row[f"{name}_sha256_passes"] = round(seconds / sha_s, 2)
    return row


@dataclass
class FixedChain:
    """The chain seam the observer reads: a head that never moves."""

    head: int

    async def current_block(self) -> int:
        return self.head


@dataclass
class FixedPeers:
    peers: list[Peer]

    async def miners(self, chain: object) -> tuple[None, list[Peer]]:
        return None, self.peers


async def upload_miners(endpoint: str, uids: int, size: int) -> list[Peer]:
    """One bucket per miner holding its sealed upload for WINDOW; the validator's read
    stores, built from each miner's commitment."""
    limit = asyncio.Semaphore(8)

    async def one(uid: int) -> Peer:
        signer = keypair_from_uri(f"//miner/{uid}")
        bucket = f"miner-{uid:04d}"
        sealed, _ = seal_payload(
            os.urandom(size), netuid=NETUID, window=WINDOW, uid=uid, signer=signer
        )
        async with limit:
            writer = S3Store(
                bucket,
                endpoint_url=endpoint,
                credentials=MOTO_KEYS,
                region="us-east-1",
                path_style=True,
                max_workers=1,
            )
            await writer.create_bucket()
            await writer.put(contribution_key(WINDOW, signer.ss58_address), sealed)
            await writer.close()
        commitment = S3Commitment(
            bucket=bucket,
            endpoint=endpoint,
            region="us-east-1",
            access_key=MOTO_KEYS.access_key_id,
            secret_key=MOTO_KEYS.secret_access_key,
        )
        return Peer(uid, signer.ss58_address, store_from_commitment(commitment))

    return list(await asyncio.gather(*(one(uid) for uid in range(uids))))


async def timed_round(observer: Observer) -> tuple[float, float, int]:
    """Wall seconds, this process's CPU seconds (the validator side only) and requests."""
    before = observer.requests
    t, cpu = time.perf_counter(), time.process_time()
    await observer.poll_round()
    return time.perf_counter() - t, time.process_time() - cpu, observer.requests - before


def per_window(uids: int, round_s: float, poll_s: float, timeline: Timeline) -> dict[str, Any]:
    """Requests one validator sends per window on each network: a window is observed from
    its first block to its close (B + grace blocks); ``Observer.run`` sleeps ``poll_s``
    after each round, so a round starts every ``round_s + poll_s``."""
    period = round_s + poll_s
    out: dict[str, Any] = {}
    for name, (blocks, block_time) in NETWORKS.items():
        observed_s = (blocks + timeline.grace_blocks) * block_time
        rounds = observed_s / period
        out[name] = {
            "window_s": blocks * block_time,
            "grace_s": timeline.grace_blocks * block_time,
            "rounds_per_window": round(rounds, 1),
            "heads_per_window": round(rounds * uids),
            "gets_per_window": uids,
            "requests_per_window": round(rounds * uids) + uids,
            "requests_per_miner_bucket": round(rounds + 1, 1),
            "round_shorter_than_grace": round_s < timeline.grace_blocks * block_time,
        }
    return out


async def poll_figures(endpoint: str, uids: int, size: int, steady_rounds: int) -> dict[str, Any]:
    timeline = Timeline(blocks_per_window=10, grace_blocks=1, reveal_blocks=2, record_blocks=5)
    poll_s = ValidatorConfig().poll_seconds
    t = time.perf_counter()
    peers = await upload_miners(endpoint, uids, size)
    setup_s = time.perf_counter() - t
    head = window_start(WINDOW, timeline.blocks_per_window) + 5  # mid-window: one window open
    rt = SimpleNamespace(
        chain=FixedChain(head),
        peers=FixedPeers(peers),
        config=SimpleNamespace(chain=SimpleNamespace(netuid=NETUID)),
        limits=Limits(max_bytes=64 * MB),
    )
    observer = Observer(rt, timeline, poll_s)  # type: ignore[arg-type]  # duck-typed runtime
    try:
        first_s, first_cpu, first_requests = await timed_round(observer)
        accepted = len(observer.windows[WINDOW].accepted)
        steady = [await timed_round(observer) for _ in range(steady_rounds)]
    finally:
        observer.close()
    steady_s = statistics.median(s for s, _, _ in steady)
    downloaded = sum(p.store.stats.bytes_downloaded for p in peers if isinstance(p.store, S3Store))
    await asyncio.gather(*(p.store.close() for p in peers if p.store is not None))
    return {
        "uids": uids,
        "upload_bytes": size,
        "setup_s": round(setup_s, 2),
        "accepted_after_first_round": accepted,
        "first_round": {
            "requests": first_requests,
            "seconds": round(first_s, 3),
            "client_cpu_s": round(first_cpu, 3),
            "bytes_downloaded": downloaded,
        },
        "steady_round": {
            "requests": steady[-1][2],
            "seconds_median": round(steady_s, 3),
            "seconds_all": [round(s, 3) for s, _, _ in steady],
            "client_cpu_s_median": round(statistics.median(c for _, c, _ in steady), 3),
            "heads_per_s": round(uids / steady_s, 1),
        },
        "poll_seconds": poll_s,
        "round_exceeds_poll_interval": steady_s > poll_s,
        "per_window": per_window(uids, steady_s, poll_s, timeline),
    }


async def polling(workdir: Path, uid_counts: list[int], size: int, steady: int) -> list[Any]:
    server = start_moto(workdir)
    try:
        return [await poll_figures(server.endpoint_url, n, size, steady) for n in uid_counts]
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1 * MB, 16 * MB, 64 * MB])
    parser.add_argument("--repeats", type=int, default=5, help="best of this many (sealing)")
    parser.add_argument("--uids", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--upload-bytes", type=int, default=64 * 1024)
    parser.add_argument("--steady-rounds", type=int, default=5)
    args = parser.parse_args()
    seal = [seal_figures(size, args.repeats) for size in args.sizes]
    with tempfile.TemporaryDirectory(prefix="gauntlet-bench-") as tmp:
        rounds = asyncio.run(polling(Path(tmp), args.uids, args.upload_bytes, args.steady_rounds))
    report = {
        "bench": "observe",
        "notes": "MB = MiB of payload; sha256_passes = step seconds / one sha256 of the payload. "
        "Polling: one moto_server on loopback (client and server share the CPUs), one bucket "
        f"per miner, observer concurrency {MAX_CONCURRENT_FETCHES}; per_window uses the "
        "median steady round; client_cpu_s is this process's CPU time (the validator side, boto3 "
        "threads included).",
        "machine": machine_info(),
        "seal": seal,
        "polling": rounds,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
