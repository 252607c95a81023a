"""Mutated sparse payloads: after the container's checks (names, dtypes, shapes, finiteness),
the sparse codec either accepts the arrays and decodes them to finite tensors of the right
shapes, or refuses them with MalformedPayload; never another exception, and its compressed
aggregate over accepted payloads stays finite."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from gauntlet.compress.codec import SparseCodecParams, build_codec
from protocol.errors import MalformedPayload

SHAPES = {"w": (48, 40), "b": (40,), "s": (1,)}
CASES = 600
ODD_FLOATS = [0.0, -0.0, 1e-45, 1e30, 1.0000001e30, -1e-30, 3.4e38, 1.0, 0.5]


def _mutate(rng: random.Random, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {k: np.array(v) for k, v in tensors.items()}
    for _ in range(rng.randint(1, 3)):
        name = rng.choice(sorted(out))
        a = out[name]
        if a.size == 0:
            continue
        flat = a.reshape(-1)
        i = rng.randrange(flat.size)
        if a.dtype == np.uint8:
            choice = rng.random()
            if choice < 0.4:
                flat[i] ^= np.uint8(1 << rng.randrange(8))  # one bit
            elif choice < 0.7:
                flat[i] = np.uint8(rng.randrange(256))
            else:  # a whole row of random bytes (positions out of order, duplicates)
                row = rng.randrange(a.shape[0])
                a[row] = np.frombuffer(rng.randbytes(a.shape[1]), dtype=np.uint8)
        else:  # float32 lo/step: only finite values get past the container
            flat[i] = np.float32(rng.choice(ODD_FLOATS) * rng.choice([1, -1]))
    return out


@pytest.mark.parametrize("bits", [1, 2, 3, 8])
def test_mutated_sparse_payloads_are_decoded_finite_or_refused(bits: int) -> None:
    codec = build_codec(SparseCodecParams(chunk=256, topk=24, bits=bits))
    rng = random.Random(bits)
    torch.manual_seed(bits)
    delta = {n: torch.randn(s) for n, s in SHAPES.items()}
    tensors, _ = codec.encode(delta)
    accepted, outcomes = [], {"accepted": 0, "refused": 0}
    for _ in range(CASES):
        case = _mutate(rng, tensors)
        try:
            codec.validate(case, SHAPES)
        except MalformedPayload:
            outcomes["refused"] += 1
            continue
        decoded = codec.decode(case, SHAPES)
        assert {n: tuple(t.shape) for n, t in decoded.items()} == SHAPES
        assert all(bool(torch.isfinite(t).all()) for t in decoded.values())
        outcomes["accepted"] += 1
        accepted.append(case)
    assert outcomes["refused"] > CASES // 10 and outcomes["accepted"] > CASES // 10, outcomes
    merged = codec.decode_batch(accepted[:16], SHAPES, normalise="per_peer")
    assert all(bool(torch.isfinite(t).all()) for t in merged.values())
