"""Structure-aware fuzzer for the codecs behind the payload parser: top-k and sparse.

``bench/fuzz.py`` mutates the container (header, manifest, signature) around arbitrary
tensors. This one keeps the container valid and mutates what only a codec can judge:
real encoded arrays of every codec setting a network may run (top-k with a DCT and u8
or f16 values, top-k without a transform, sparse with 1, 2, 3 and 8 value bits), with
bit flips, random bytes, whole rows of random positions (out of order, duplicated,
beyond the chunk) and odd floats in the per-chunk offset and step. Each case goes the
node's whole way: ``encode_payload`` (signed), ``decode_payload`` with the codec's specs
(names, dtypes, shapes, index bounds, finiteness), then ``codec.decode`` (which
validates first). Every outcome must be a refusal with a typed ``ProtocolError`` or a
decode to finite tensors of the declared shapes; every 16 accepted payloads of a setting
are also aggregated in the compressed domain (``decode_batch``, per-peer normalisation),
which must stay finite. Anything else is counted as untyped: a bug.

    .venv/bin/python bench/fuzz_codec.py --cases 100000   # JSON on stdout; exit 1 on a bug
"""

from __future__ import annotations

import functools
import random
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.fuzz import NETUID, WINDOW, Tally, fuzz_cli, fuzz_manifest  # noqa: E402
from gauntlet.compress.codec import Codec, build_codec  # noqa: E402
from protocol.container import Limits, decode_payload, encode_payload  # noqa: E402
from protocol.schemas import CodecParams, SparseCodecParams, TopKCodecParams  # noqa: E402
from protocol.signing import keypair_from_uri  # noqa: E402

SHAPES = {"w": (48, 40), "b": (40,), "s": (1,)}
LIMITS = Limits(max_bytes=1 << 20, max_header_bytes=1 << 16)
# Finite odd floats for lo/step/values: zeros of both signs, denormals, the codecs'
# MAX_ABS_VALUE and just past it, float32's edge (only finite values pass the container).
ODD_FLOATS = [0.0, -0.0, 1e-45, 1e30, 1.0000001e30, -1e-30, 3.4e38, 1.0, 0.5, 65504.0]
SETTINGS: list[Any] = [
    TopKCodecParams(chunk=16, topk=8, dct=True, quant="u8"),
    TopKCodecParams(chunk=16, topk=8, dct=True, quant="f16"),
    TopKCodecParams(chunk=8, topk=5, dct=False, quant="f32"),
    SparseCodecParams(chunk=256, topk=24, bits=1),
    SparseCodecParams(chunk=256, topk=24, bits=2),
    SparseCodecParams(chunk=64, topk=9, bits=3),
    SparseCodecParams(chunk=256, topk=24, bits=8),
]


def mutate(rng: random.Random, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A copy of a codec's ``tensors`` with 1 to 3 edits, each in one array: a flipped bit,
    a random byte or a random row (integer arrays: positions, packed values), or an odd
    float (float arrays)."""
    out = {k: np.array(v) for k, v in tensors.items()}
    for _ in range(rng.randint(1, 3)):
        name = rng.choice(sorted(out))
        a = out[name]
        if a.size == 0:
            continue
        flat = a.reshape(-1)
        i = rng.randrange(flat.size)
        if a.dtype.kind in "ui":
            bits = 8 * a.dtype.itemsize
            choice = rng.random()
            if choice < 0.4:
                flat[i] ^= a.dtype.type(1 << rng.randrange(bits))
            elif choice < 0.7:
                flat[i] = a.dtype.type(rng.randrange(1 << bits))
            else:  # a whole row of random values: out of order, duplicated, out of bounds
                row = rng.randrange(a.shape[0]) if a.ndim > 1 else 0
                target = a[row] if a.ndim > 1 else a
                target[...] = np.frombuffer(rng.randbytes(target.nbytes), dtype=a.dtype)
        else:  # past float16's range it becomes inf, which the container refuses
            with np.errstate(over="ignore"):
                flat[i] = a.dtype.type(rng.choice(ODD_FLOATS) * rng.choice([1, -1]))
    return out


def _check(codec: Codec, tensors: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    decoded = codec.decode(tensors, SHAPES)
    if {n: tuple(t.shape) for n, t in decoded.items()} != SHAPES:
        raise AssertionError("decoded shapes differ from the declared ones")
    if not all(bool(torch.isfinite(t).all()) for t in decoded.values()):
        raise AssertionError("an accepted payload decoded to a non-finite value")
    return decoded


class Setting:
    """One codec setting: its clean payload arrays and the accepted mutated ones so far."""

    def __init__(self, params: Any, seed: int) -> None:
        self.codec = build_codec(params)
        g = torch.Generator().manual_seed(seed)
        delta = {n: torch.randn(s, generator=g) for n, s in SHAPES.items()}
        self.tensors, _ = self.codec.encode(delta)
        self.specs = self.codec.specs(SHAPES)
        self.params = CodecParams(params)
        self.accepted: list[dict[str, np.ndarray]] = []


def one_case(setting: Setting, case: dict[str, np.ndarray], signer: Any) -> str:
    payload = encode_payload(case, fuzz_manifest(signer, setting.params), signer)
    decoded = decode_payload(
        payload,
        limits=LIMITS,
        expected_hotkey=signer.ss58_address,
        expected_window=WINDOW,
        expected_netuid=NETUID,
        specs=setting.specs,
    )
    _check(setting.codec, dict(decoded.tensors))
    setting.accepted.append(dict(decoded.tensors))
    if len(setting.accepted) == 16:
        merged = setting.codec.decode_batch(setting.accepted, SHAPES, normalise="per_peer")
        setting.accepted.clear()
        if not all(bool(torch.isfinite(t).all()) for t in merged.values()):
            raise AssertionError("the aggregate of accepted payloads is not finite")
        return "accepted+aggregated"
    return "accepted"


def run_fuzz(cases: int, seed: int = 0) -> dict[str, Any]:
    """``cases`` mutated payloads, spread over every setting; outcomes per setting."""
    rng = random.Random(seed)
    signer = keypair_from_uri("//gauntlet/fuzz-codec")
    settings = [Setting(params, seed + i) for i, params in enumerate(SETTINGS)]
    tally = Tally()
    for index in range(cases):
        setting = settings[index % len(settings)]
        case = mutate(rng, setting.tensors)
        stage = _label(setting.codec.params)
        tally.record(index, functools.partial(one_case, setting, case, signer), stage)
    return tally.report(cases, seed)


def _label(params: Any) -> str:
    if isinstance(params, SparseCodecParams):
        return f"sparse c{params.chunk} k{params.topk} b{params.bits}"
    transform = "dct" if params.dct else "raw"
    return f"topk c{params.chunk} k{params.topk} {transform} {params.quant}"


def main() -> int:
    return fuzz_cli(run_fuzz, __doc__ or "")


if __name__ == "__main__":
    sys.exit(main())
