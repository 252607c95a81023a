"""Structure-aware fuzzer for the payload parser (protocol.container.decode_payload).

Random bytes mostly die at the first check. This fuzzer starts from real payloads
(made and signed with ``encode_payload``) and mutates what a parser must get
right, several things at once: tensor shapes (zero dimensions next to huge ones),
data offsets, dtypes, extra and missing entries, the header JSON text (duplicate
keys, BOM, UTF-16/32, NaN, deep nesting, truncation), the manifest (fields,
duplicate keys, surrogates) and the signature (upper case, spaces, prefixes).
Most mutated manifests are validly re-signed, and the data hash follows the
data, so mutations reach the checks behind the signature. Every outcome must be
an accepted payload or a typed ``ProtocolError``; anything else is a bug.

    .venv/bin/python bench/fuzz.py --cases 100000        # JSON on stdout; exit 1 on a bug
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import random
import resource
import struct
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import numpy as np  # noqa: E402

from bench.machine import machine_info  # noqa: E402
from protocol.container import DTYPES, Limits, TensorSpec, decode_payload, encode_payload  # noqa: E402
from protocol.errors import ProtocolError  # noqa: E402
from protocol.schemas import CodecParams, ContributionManifest  # noqa: E402
from protocol.signing import keypair_from_uri  # noqa: E402

NETUID, WINDOW = 3, 42
LIMITS = Limits(max_bytes=1 << 20, max_header_bytes=1 << 16)
# Integers at the edges of every width a parser might convert to.
EDGE_INTS = [0, 1, 2, 3, 7, 8, 255, 256, 2**15, 2**16, 2**31 - 1, 2**31, 2**32, 2**32 + 1]
EDGE_INTS += [2**40, 2**53 + 1, 2**62, 2**63 - 1, 2**63, 2**64, 2**64 + 1, 10**30, -1, -(2**63)]
ODD_VALUES: list[Any] = [None, True, False, 1.5, 1e308, -0.0, "2", "", [], {}, [1], {"a": 1}]
DTYPE_NAMES = [*DTYPES, "F64", "BOOL", "f32", "", "F32 ", "U32"]


@dataclass
class Case:
    """One payload under construction; ``build`` turns it into bytes."""

    header: dict[str, Any]
    data: bytes
    manifest: dict[str, Any]
    resign: bool = True  # sign the (mutated) manifest with the real key
    rehash: bool = True  # tensors_sha256 follows the (mutated) data
    metadata_extra: dict[str, Any] = field(default_factory=dict)
    manifest_edits: list[Callable[[str], str]] = field(default_factory=list)
    signature_edit: Callable[[str], Any] | None = None
    header_edits: list[Callable[[str], str]] = field(default_factory=list)
    encoding: str = "utf-8"
    length: int | None = None


@dataclass(frozen=True)
class Base:
    header: dict[str, Any]
    data: bytes
    manifest: dict[str, Any]
    specs: dict[str, TensorSpec]


def _array(rng: random.Random, dtype_name: str) -> tuple[np.ndarray, TensorSpec]:
    shape = tuple(rng.choice([0, 1, 2, 3, 5]) for _ in range(rng.randint(0, 3)))
    dtype = DTYPES[dtype_name]
    nprng = np.random.default_rng(rng.getrandbits(32))
    if dtype_name in {"F32", "F16"}:
        array = nprng.standard_normal(shape).astype(dtype)
    elif dtype_name == "BF16":
        array = nprng.integers(0x3F00, 0x4000, shape).astype(dtype)  # finite bf16 patterns
    else:
        array = nprng.integers(0, 16, shape).astype(dtype)
    bound = 16 if dtype_name in {"I64", "I32", "U16"} else None
    return array, TensorSpec(dtype_name, shape, bound)


def fuzz_manifest(signer: Any, codec: CodecParams | None = None) -> ContributionManifest:
    """The manifest every fuzzed payload starts from (``tensors_sha256`` is filled in by
    ``encode_payload``)."""
    return ContributionManifest(
        netuid=NETUID,
        window=WINDOW,
        uid=5,
        hotkey=signer.ss58_address,
        model="fuzz",
        fingerprint=[0.5, -0.25],
        page_ids=[1, 2, 3],
        **({"codec": codec} if codec is not None else {}),
        tensors_sha256="0" * 64,
    )


def make_bases(rng: random.Random, signer: Any, count: int = 8) -> list[Base]:
    """Valid signed payloads of random tensor sets, split back into their parts."""
    bases = []
    for _ in range(count):
        arrays, specs, bf16 = {}, {}, set()
        for i in range(rng.randint(1, 5)):
            dtype_name = rng.choice(list(DTYPES))
            name = f"t{i}.{dtype_name.lower()}"
            arrays[name], specs[name] = _array(rng, dtype_name)
            if dtype_name == "BF16":
                bf16.add(name)
        raw = encode_payload(arrays, fuzz_manifest(signer), signer, bf16_names=bf16)
        (n,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8 : 8 + n])
        metadata = header.pop("__metadata__")
        bases.append(Base(header, raw[8 + n :], json.loads(metadata["manifest"]), specs))
    return bases


# --- mutators: each edits a Case in place ------------------------------------------------------


def _pick_entry(rng: random.Random, case: Case) -> dict[str, Any] | None:
    entries = [v for v in case.header.values() if isinstance(v, dict)]
    return rng.choice(entries) if entries else None


def mut_shape(rng: random.Random, case: Case) -> None:
    entry = _pick_entry(rng, case)
    if entry is None or not isinstance(entry.get("shape"), list):
        return
    shape = list(entry["shape"])
    op = rng.randrange(6)
    if op == 0 and shape:
        shape[rng.randrange(len(shape))] = rng.choice(EDGE_INTS)
    elif op == 1:
        shape.insert(rng.randint(0, len(shape)), rng.choice(EDGE_INTS))
    elif op == 2 and shape:
        shape.pop(rng.randrange(len(shape)))
    elif op == 3:  # empty tensor with huge other dimensions: 0 bytes, absurd shape
        shape = [0] + [rng.choice(EDGE_INTS) for _ in range(rng.randint(1, 3))]
    elif op == 4:
        shape = [1] * rng.choice([9, 33, 64]) + shape
    elif shape:
        shape[rng.randrange(len(shape))] = rng.choice(ODD_VALUES)
    entry["shape"] = shape if rng.random() < 0.95 else rng.choice(ODD_VALUES)


def mut_offsets(rng: random.Random, case: Case) -> None:
    entry = _pick_entry(rng, case)
    if entry is None or not isinstance(entry.get("data_offsets"), list):
        return
    offsets = list(entry["data_offsets"])
    op = rng.randrange(5)
    i = rng.randrange(max(1, len(offsets)))
    if op == 0 and offsets and type(offsets[i]) is int:
        offsets[i] += rng.choice([-8, -2, -1, 1, 2, 8])
    elif op == 1 and offsets:
        offsets[rng.randrange(len(offsets))] = rng.choice(EDGE_INTS + ODD_VALUES)
    elif op == 2:
        offsets.reverse()
    elif op == 3:
        offsets = offsets[:1] if rng.random() < 0.5 else [*offsets, rng.choice(EDGE_INTS)]
    else:
        other = _pick_entry(rng, case)
        if other is not None:
            offsets = list(other.get("data_offsets", offsets))
    entry["data_offsets"] = offsets


def mut_dtype(rng: random.Random, case: Case) -> None:
    entry = _pick_entry(rng, case)
    if entry is not None:
        entry["dtype"] = rng.choice(DTYPE_NAMES + ODD_VALUES[:4])


def mut_entries(rng: random.Random, case: Case) -> None:
    op = rng.randrange(4)
    names = list(case.header)
    if op == 0:  # an extra zero-size tensor with a huge shape, placed at the end
        n = len(case.data)
        dims = [0, rng.choice(EDGE_INTS[8:])] if rng.random() < 0.7 else [rng.choice(EDGE_INTS)]
        case.header[f"extra{rng.randrange(9)}"] = {
            "dtype": rng.choice(list(DTYPES)),
            "shape": dims,
            "data_offsets": [n, n],
        }
    elif op == 1 and names:
        del case.header[rng.choice(names)]
    elif op == 2:
        entry = _pick_entry(rng, case)
        if entry is not None:
            if rng.random() < 0.5 and entry:
                del entry[rng.choice(list(entry))]
            else:
                entry["extra"] = rng.choice(ODD_VALUES)
    elif names:
        case.header[rng.choice(names)] = rng.choice(ODD_VALUES)


def _inject_duplicate(rng: random.Random, text: str) -> str:
    # Repeat the first key of an object somewhere in the text.
    starts = [i for i, c in enumerate(text) if c == "{" and text[i + 1 : i + 2] == '"']
    if not starts:
        return text
    start = rng.choice(starts)
    end = text.find(",", start)
    if end < 0:
        return text
    return text[:end] + "," + text[start + 1 : end] + text[end:]


def mut_header_text(rng: random.Random, case: Case) -> None:
    op = rng.randrange(9)
    if op == 0:
        case.header_edits.append(lambda t: _inject_duplicate(rng, t))
    elif op == 1:
        case.header_edits.append(lambda t: "\ufeff" + t)
    elif op == 2:
        case.encoding = rng.choice(["utf-16", "utf-16-le", "utf-32", "utf-8-sig"])
    elif op == 3:
        case.header_edits.append(lambda t: t[:-1] + rng.choice([',"x":NaN}', ',"x":1e999}']))
    elif op == 4:
        case.header_edits.append(lambda t: t[: rng.randrange(max(1, len(t)))])
    elif op == 5:
        case.header_edits.append(lambda t: t + rng.choice(["x", "}", " \x00", "\n{}"]))
    elif op == 6:
        depth = rng.choice([100, 5000, 50000])
        case.header_edits.append(lambda t: t[:-1] + ',"deep":' + "[" * depth + "]" * depth + "}")
    elif op == 7:
        case.header_edits.append(lambda t: t.replace('"dtype"', '"dtyp\\u0065"', 1))
    else:
        case.header_edits.append(lambda t: t + " " * rng.randrange(16))


MANIFEST_FIELDS = ["netuid", "window", "uid", "hotkey", "model", "fingerprint", "page_ids"]
MANIFEST_FIELDS += ["codec", "tensors_sha256", "protocol_version", "kind", "bonus"]


def mut_manifest(rng: random.Random, case: Case) -> None:
    op = rng.randrange(6)
    if op == 0:
        name = rng.choice(MANIFEST_FIELDS)
        case.manifest[name] = rng.choice(EDGE_INTS + ODD_VALUES + ["\ud800", "A" * 70])
        if name == "tensors_sha256":
            case.rehash = False
    elif op == 1:
        case.manifest_edits.append(lambda t: _inject_duplicate(rng, t))
    elif op == 2:
        case.manifest_edits.append(lambda t: "\ufeff" + t)
    elif op == 3:
        case.manifest["fingerprint"] = [rng.choice([1e308, -1e308, 1e-320, 0.0])] * 3
        case.manifest_edits.append(lambda t: t.replace("1e+308", "1e999"))
    elif op == 4:
        case.manifest_edits.append(lambda t: t.replace('"model":"fuzz"', '"model":"\\ud800"'))
    else:
        case.resign = False
        case.manifest["page_ids"] = [rng.randrange(100)]


def mut_signature(rng: random.Random, case: Case) -> None:
    edits: list[Callable[[str], Any]] = [
        str.upper,
        lambda s: " ".join(s[i : i + 2] for i in range(0, len(s), 2)),
        lambda s: "0x" + s,
        lambda s: s[: rng.randrange(max(1, len(s)))],
        lambda s: s + "00",
        lambda s: s[:-1] + ("0" if s[-1] != "0" else "1"),
        lambda s: s[:10] + "G" + s[11:],
        lambda s: rng.choice(ODD_VALUES),
        lambda s: bytes(rng.getrandbits(8) for _ in range(64)).hex(),
    ]
    case.signature_edit = rng.choice(edits)


def mut_metadata(rng: random.Random, case: Case) -> None:
    case.metadata_extra[rng.choice(["extra", "manifest", "signature"])] = rng.choice(ODD_VALUES)


def mut_data(rng: random.Random, case: Case) -> None:
    data = bytearray(case.data)
    op = rng.randrange(4)
    if op == 0 and data:
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif op == 1:
        data += bytes(rng.randrange(1, 16))
    elif op == 2 and data:
        del data[rng.randrange(len(data)) :]
    else:
        case.rehash = False
    case.data = bytes(data)


def mut_length(rng: random.Random, case: Case) -> None:
    case.length = rng.choice([-8, -1, 1, 8, 2**62, 2**64 - 1, 0])


MUTATORS = [mut_shape, mut_offsets, mut_dtype, mut_entries, mut_header_text]
MUTATORS += [mut_manifest, mut_signature, mut_metadata, mut_data, mut_length]
WEIGHTS = [4, 3, 2, 3, 2, 2, 2, 1, 1, 1]


def build(case: Case, signer: Any) -> bytes:
    manifest = dict(case.manifest)
    if case.rehash:
        manifest["tensors_sha256"] = hashlib.sha256(case.data).hexdigest()
    text = json.dumps(manifest, sort_keys=True, separators=(",", ":"))
    for edit in case.manifest_edits:
        text = edit(text)
    signed = text.encode("utf-8", "surrogatepass")
    signature: Any = bytes(signer.sign(signed) if case.resign else bytes(64)).hex()
    if case.signature_edit is not None:
        signature = case.signature_edit(signature)
    metadata = {"manifest": text, "signature": signature, **case.metadata_extra}
    header_text = json.dumps({**case.header, "__metadata__": metadata}, separators=(",", ":"))
    for edit in case.header_edits:
        header_text = edit(header_text)
    header = header_text.encode(case.encoding, "surrogatepass")
    length = len(header) if case.length is None else (len(header) + case.length) % 2**64
    return struct.pack("<Q", length) + header + case.data


def one_case(rng: random.Random, bases: list[Base], signer: Any) -> tuple[bytes, Base, bool]:
    base = rng.choice(bases)
    case = Case(json.loads(json.dumps(base.header)), base.data, dict(base.manifest))
    for mutator in rng.choices(MUTATORS, WEIGHTS, k=rng.randint(1, 4)):
        mutator(rng, case)
    return build(case, signer), base, rng.random() < 0.5


class Tally:
    """Outcomes of a fuzz run by type: each call is accepted (what it returns), a typed
    ``ProtocolError`` (its class name) or untyped (the bug a fuzzer hunts: counted, and the
    first 20 kept with where they were raised). Shared by every fuzzer here."""

    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()
        self.untyped: list[dict[str, str]] = []
        self.started = time.perf_counter()

    def record(self, index: int, call: Callable[[], str], stage: str = "") -> None:
        prefix = f"{stage}:" if stage else ""
        try:
            outcome = call()
        except ProtocolError as exc:
            outcome = type(exc).__name__
        except Exception as exc:
            outcome = "untyped:" + type(exc).__name__
            if len(self.untyped) < 20:
                where = traceback.extract_tb(exc.__traceback__)[-1]
                self.untyped.append(
                    {
                        "case": str(index),
                        **({"stage": stage} if stage else {}),
                        "error": f"{type(exc).__name__}: {exc}"[:300],
                        "at": f"{where.filename}:{where.lineno}",
                    }
                )
        self.outcomes[prefix + outcome] += 1

    def report(self, cases: int, seed: int) -> dict[str, Any]:
        seconds = time.perf_counter() - self.started
        return {
            "cases": cases,
            "seed": seed,
            "seconds": round(seconds, 2),
            "cases_per_second": round(cases / seconds, 1) if seconds else None,
            "outcomes": dict(self.outcomes.most_common()),
            "untyped": self.untyped,
            # ru_maxrss is KiB on Linux
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }


def run_fuzz(cases: int, seed: int = 0) -> dict[str, Any]:
    """Decode ``cases`` mutated payloads; outcomes by type, plus any untyped failures."""
    rng = random.Random(seed)
    signer = keypair_from_uri("//gauntlet/fuzz")
    bases = make_bases(rng, signer)
    tally = Tally()
    for index in range(cases):
        payload, base, with_specs = one_case(rng, bases, signer)
        specs = base.specs if with_specs else None
        tally.record(index, functools.partial(_decode, payload, signer.ss58_address, specs))
    return tally.report(cases, seed)


def _decode(payload: bytes, hotkey: str, specs: dict[str, TensorSpec] | None) -> str:
    decode_payload(
        payload,
        limits=LIMITS,
        expected_hotkey=hotkey,
        expected_window=WINDOW,
        expected_netuid=NETUID,
        specs=specs,
    )
    return "accepted"


def fuzz_cli(run: Callable[[int, int], dict[str, Any]], doc: str) -> int:
    """``--cases N --seed S``: run ``run(cases, seed)`` and print its report as JSON with
    the machine; exit 1 when any case failed untyped (shared by every fuzzer here)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    report = {**run(args.cases, args.seed), "machine": machine_info()}
    print(json.dumps(report, indent=2))
    return 1 if report["untyped"] else 0


def main() -> int:
    return fuzz_cli(run_fuzz, __doc__ or "")


if __name__ == "__main__":
    sys.exit(main())
