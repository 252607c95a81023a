"""Deterministic data-page assignment: a documented hash of public values.

``assign_pages`` maps (netuid, uid, hotkey, window, dataset id) to page indices
with SHA-256 in counter mode. No Python ``hash()``, no global RNG: the result is
identical across processes, Python versions and ``PYTHONHASHSEED``. The exact
construction is specified in protocol/SPEC.md and pinned by test vectors.
"""

from __future__ import annotations

import hashlib
import struct

ASSIGNMENT_DOMAIN = b"gauntlet/assign/v1"
RANDOM_PAGES_DOMAIN = b"gauntlet/random-pages/v1"


def _seed(domain: bytes, *parts: str | int) -> bytes:
    h = hashlib.sha256(domain)
    for part in parts:
        data = str(part).encode("utf-8")
        h.update(struct.pack(">I", len(data)))
        h.update(data)
    return h.digest()


def _draw_distinct(seed: bytes, count: int, num_pages: int) -> list[int]:
    """``count`` distinct integers in ``[0, num_pages)`` from a SHA-256 counter stream."""
    if not 0 < num_pages <= 2**64:
        # Above 2**64 the rejection limit would be 0 and the draw would never end.
        raise ValueError(f"num_pages must be in [1, 2**64], got {num_pages}")
    if not 0 <= count <= num_pages:
        raise ValueError(f"cannot draw {count} distinct pages out of {num_pages}")
    chosen: list[int] = []
    seen: set[int] = set()
    counter = 0
    # Rejection sampling over 64-bit draws keeps the distribution exactly uniform.
    limit = (2**64 // num_pages) * num_pages
    while len(chosen) < count:
        block = hashlib.sha256(seed + struct.pack(">Q", counter)).digest()
        counter += 1
        for offset in range(0, 32, 8):
            (value,) = struct.unpack(">Q", block[offset : offset + 8])
            if value >= limit:
                continue
            page = value % num_pages
            if page not in seen:
                seen.add(page)
                chosen.append(page)
                if len(chosen) == count:
                    break
    return chosen


def assign_pages(
    *,
    netuid: int,
    uid: int,
    hotkey: str,
    window: int,
    dataset_id: str,
    num_pages: int,
    pages_per_window: int,
) -> list[int]:
    """Pages a miner must train on in ``window``; distinct, in draw order."""
    seed = _seed(ASSIGNMENT_DOMAIN, netuid, uid, hotkey, window, dataset_id)
    return _draw_distinct(seed, pages_per_window, num_pages)


def random_pages(
    *, secret: bytes, window: int, dataset_id: str, num_pages: int, count: int
) -> list[int]:
    """Pages a validator evaluates on that no miner can predict (``secret`` is the validator's)."""
    seed = _seed(RANDOM_PAGES_DOMAIN, secret.hex(), window, dataset_id)
    return _draw_distinct(seed, count, num_pages)
