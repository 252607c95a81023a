"""Page assignment is a documented hash of public values: pinned by vectors, stable across processes.

Regenerate the vectors (only on a deliberate protocol change) with
``python tests/protocol/test_assignment_vectors.py`` from the repository root.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from protocol.assignment import assign_pages, random_pages

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "protocol" / "vectors" / "assignment.json"

ASSIGN_CASES: list[dict] = [
    dict(
        netuid=3,
        uid=7,
        hotkey="5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY",
        window=1000,
        dataset_id="fineweb-edu/v1",
        num_pages=100_000,
        pages_per_window=4,
    ),
    dict(netuid=0, uid=0, hotkey="a", window=0, dataset_id="", num_pages=1, pages_per_window=1),
    dict(netuid=0, uid=0, hotkey="a", window=0, dataset_id="", num_pages=1, pages_per_window=0),
    dict(netuid=3, uid=1, hotkey="b", window=5, dataset_id="d", num_pages=10, pages_per_window=10),
    dict(netuid=3, uid=2, hotkey="b", window=5, dataset_id="d", num_pages=2, pages_per_window=1),
    dict(
        netuid=3,
        uid=7,
        hotkey="5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY",
        window=1001,
        dataset_id="fineweb-edu/v1",
        num_pages=100_000,
        pages_per_window=4,
    ),
    dict(
        netuid=65535,
        uid=255,
        hotkey="Z" * 64,
        window=9_999_999_999,
        dataset_id="x",
        num_pages=1000,
        pages_per_window=16,
    ),
    # Rejection sampling: 3 * 2**62 leaves a quarter of the 64-bit range rejected.
    dict(
        netuid=1,
        uid=1,
        hotkey="c",
        window=1,
        dataset_id="big",
        num_pages=3 * 2**62,
        pages_per_window=8,
    ),
    dict(
        netuid=1, uid=1, hotkey="c", window=1, dataset_id="big", num_pages=2**64, pages_per_window=3
    ),
    dict(
        netuid=1,
        uid=1,
        hotkey="c",
        window=1,
        dataset_id="ünïcode/データ",
        num_pages=7,
        pages_per_window=5,
    ),
    # Length prefixes keep ("ab", "c") and ("a", "bc") apart.
    dict(netuid=1, uid=12, hotkey="3", window=4, dataset_id="d", num_pages=50, pages_per_window=5),
    dict(netuid=1, uid=1, hotkey="23", window=4, dataset_id="d", num_pages=50, pages_per_window=5),
]

RANDOM_CASES: list[dict] = [
    dict(secret="00" * 32, window=0, dataset_id="fineweb-edu/v1", num_pages=100_000, count=4),
    dict(secret="", window=0, dataset_id="", num_pages=1, count=1),
    dict(secret="ff", window=12, dataset_id="d", num_pages=5, count=5),
    dict(secret="0123456789abcdef", window=77, dataset_id="d", num_pages=3 * 2**62, count=6),
]


def _compute() -> dict:
    return {
        "assign_pages": [{**case, "pages": assign_pages(**case)} for case in ASSIGN_CASES],
        "random_pages": [
            {**case, "pages": random_pages(**{**case, "secret": bytes.fromhex(case["secret"])})}
            for case in RANDOM_CASES
        ],
    }


def _vectors() -> dict:
    return json.loads(VECTORS.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "case", _vectors()["assign_pages"], ids=lambda c: f"{c['hotkey'][:6]}-{c['window']}"
)
def test_assign_pages_matches_vector(case: dict) -> None:
    args = {k: v for k, v in case.items() if k != "pages"}
    assert assign_pages(**args) == case["pages"]


@pytest.mark.parametrize(
    "case", _vectors()["random_pages"], ids=lambda c: f"{c['secret'][:6]}-{c['window']}"
)
def test_random_pages_matches_vector(case: dict) -> None:
    args = {k: v for k, v in case.items() if k != "pages"}
    assert random_pages(**{**args, "secret": bytes.fromhex(args["secret"])}) == case["pages"]


def test_vectors_cover_every_case_here() -> None:
    assert _vectors() == json.loads(json.dumps(_compute()))


_CHILD = """
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from test_assignment_vectors import _compute
print(json.dumps(_compute(), sort_keys=True))
"""


def test_same_output_under_different_hash_seeds() -> None:
    outputs = set()
    for seed in ("0", "1", "12345", "random"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run(
            [sys.executable, "-c", _CHILD, str(ROOT), str(Path(__file__).parent)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
            cwd=ROOT,
        )
        outputs.add(result.stdout)
    assert len(outputs) == 1
    assert json.loads(outputs.pop()) == json.loads(json.dumps(_compute(), sort_keys=True))


def test_num_pages_beyond_64_bits_is_refused() -> None:
    with pytest.raises(ValueError):
        assign_pages(
            netuid=1,
            uid=1,
            hotkey="a",
            window=1,
            dataset_id="d",
            num_pages=2**64 + 1,
            pages_per_window=1,
        )


def test_cannot_draw_more_pages_than_exist() -> None:
    with pytest.raises(ValueError):
        random_pages(secret=b"s", window=1, dataset_id="d", num_pages=3, count=4)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    VECTORS.write_text(
        json.dumps(_compute(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )


def _spec_assign(netuid, uid, hotkey, window, dataset_id, num_pages, pages_per_window) -> list[int]:
    """protocol/SPEC.md's construction, written out from the text rather than the module."""
    import hashlib

    seed_input = b"gauntlet/assign/v1"
    for part in (netuid, uid, hotkey, window, dataset_id):
        raw = str(part).encode("utf-8")
        seed_input += len(raw).to_bytes(4, "big") + raw
    seed = hashlib.sha256(seed_input).digest()
    limit = (2**64 // num_pages) * num_pages
    words = (
        int.from_bytes(hashlib.sha256(seed + n.to_bytes(8, "big")).digest()[i : i + 8], "big")
        for n in range(10**6)
        for i in (0, 8, 16, 24)
    )
    pages: list[int] = []
    while len(pages) < pages_per_window:
        word = next(words)
        if word < limit and word % num_pages not in pages:
            pages.append(word % num_pages)
    return pages


@pytest.mark.parametrize("case", ASSIGN_CASES[:8], ids=str)
def test_spec_text_construction_agrees(case: dict) -> None:
    assert _spec_assign(**case) == assign_pages(**case)


def test_spec_worked_vector() -> None:
    # The worked example printed in protocol/SPEC.md.
    assert assign_pages(**ASSIGN_CASES[0]) == [10505, 51332, 3339, 52026]
