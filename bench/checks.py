"""What a validator's checks cost per contribution: each valid contribution's norm and
sketch, read from its payload (``gauntlet.node.checks.measure_updates``).

On a GPU each operation is a launch of some microseconds and each read of a device scalar
waits for everything queued, so what decides the checks' time there is how many of each a
contribution costs, and whether that grows with the miners. This prints, for
``--contributions`` payloads of the default codec over the 1.2B shapes under ``--subset``
(the sketch's stride kept as for the whole model, so the same entries are read per
parameter): seconds per contribution (fastest of ``--repeats``), aten calls and
device-scalar reads per contribution (``torch.profiler``, one run after a warm one), the
norms, and checksums of the sketches' and the norms' bits, so two checkouts compare bit
for bit. It puts the
checkout's root last on ``sys.path``: ``PYTHONPATH`` may point it at another checkout.

    .venv/bin/python bench/checks.py                         # 3 blocks, 16 miners, CPU
    python bench/checks.py --device cuda --subset '' --contributions 64   # 1.2B on a GPU
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parents[1]))  # last: PYTHONPATH may override

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.machine import machine_info  # noqa: E402
from gauntlet.compress.codec import build_codec  # noqa: E402
from gauntlet.compress.sizes import ASSUMED_1B2, model_shapes  # noqa: E402
from gauntlet.config import GauntletConfig  # noqa: E402
from gauntlet.node.checks import measure_updates  # noqa: E402
from gauntlet.node.gather import Contribution, Decoder  # noqa: E402
from protocol.container import Limits  # noqa: E402

# what a read of a device scalar is called in the profiler (``float(t)``, ``t.item()``)
SCALAR_READ = "aten::_local_scalar_dense"


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run(args: argparse.Namespace) -> dict[str, Any]:
    from torch.profiler import ProfilerActivity, profile

    every = model_shapes(ASSUMED_1B2)
    prefixes = tuple(p for p in args.subset.split(",") if p)
    shapes = {n: s for n, s in every.items() if not prefixes or n.startswith(prefixes)}
    config = GauntletConfig()
    whole, part = (sum(math.prod(s) for s in x.values()) for x in (every, shapes))
    # the whole model's stride (about 2^20 coordinates of it), on the parameters measured
    coordinates = max(1, part * config.scoring.sketch_coordinates // whole)
    scoring = config.scoring.model_copy(update={"sketch_coordinates": coordinates})
    codec = build_codec(config.compress.codec_params())
    g = torch.Generator().manual_seed(0)
    contributions = [
        Contribution(
            uid,
            f"hk{uid}",
            "ok",
            tensors=codec.encode(
                {n: 1e-3 * torch.randn(s, generator=g) for n, s in shapes.items()}
            )[0],
        )
        for uid in range(args.contributions)
    ]
    decoder = Decoder(1, Limits(max_bytes=1 << 34), codec, shapes, args.device)

    def measure() -> tuple[dict[int, float], dict[int, np.ndarray]]:
        out = measure_updates(contributions, decoder, scoring)
        _sync(args.device)
        return out

    norms, sketches = measure()  # warm: allocator, kernels
    seconds = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        measure()
        seconds.append(time.perf_counter() - start)
    activities = [ProfilerActivity.CPU]
    if args.device.startswith("cuda"):
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        measure()
    events = prof.key_averages()
    n = len(contributions)
    sketch_digest, norm_digest = hashlib.sha256(), hashlib.sha256()
    for uid in sorted(norms):
        sketch_digest.update(sketches[uid].tobytes())
        norm_digest.update(np.float64(norms[uid]).tobytes())
    return {
        "bench": "checks",
        "shapes": f"ASSUMED_1B2, parameters starting {list(prefixes) or 'anything'}",
        "params": part,
        "parameters": len(shapes),
        "contributions": n,
        "sketch_coordinates": coordinates,
        "codec": codec.params.model_dump(),
        "seconds_per_contribution": round(min(seconds) / n, 5),
        "seconds_all": [round(s, 4) for s in seconds],
        "aten_calls_per_contribution": round(
            sum(e.count for e in events if e.key.startswith("aten::")) / n, 1
        ),
        "scalar_reads_per_contribution": round(
            sum(e.count for e in events if e.key == SCALAR_READ) / n, 2
        ),
        "checksums": {
            "sketches": sketch_digest.hexdigest()[:16],
            "norms": norm_digest.hexdigest()[:16],
        },
        "norms": [norms[uid] for uid in sorted(norms)],
        "machine": machine_info(args.device),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--contributions", type=int, default=16)
    parser.add_argument(
        "--subset",
        default="layers.0.,layers.1.,layers.2.",
        help="comma-separated parameter-name prefixes ('' for the whole 1.2B model)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(run(args), indent=2))


if __name__ == "__main__":
    main()
