"""Why the aggregate adds peers one ``scatter_add_`` at a time: the one-call alternatives.

Every node must form the same aggregate bits. ``gauntlet.compress.sparse.scatter_sum``
adds each peer's kept coefficients of a parameter with one ``scatter_add_`` per peer, in
peer order (``fold``): positions are unique within a peer, so no two adds race. The
one-call alternatives add every peer's entries at once, where positions repeat across
peers:

- ``index_add``: ``index_add_`` of all entries (on a GPU: atomic adds, in no fixed order);
- ``index_put_acc``: ``index_put_(accumulate=True)`` of all entries, peer-major;
- ``index_add_deterministic_mode``: ``index_add_`` under
  ``torch.use_deterministic_algorithms(True)`` (global; set last).

For each: the fastest of 5 timed runs (ms), whether 3 runs gave the fold's bits
(``bitwise_fold``) and each other's (``repeatable``). Random unique sorted positions per
row and values spanning six decades, the shape of one 1.2B FFN matrix under the sparse
codec by default.

    python bench/scatter_determinism.py --device cuda
    .venv/bin/python bench/scatter_determinism.py --device cpu --rows 64
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import torch  # noqa: E402

from bench.machine import machine_info  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--peers", type=int, default=16)
    parser.add_argument("--rows", type=int, default=11264, help="chunks (11.5M / 4096 + pad)")
    parser.add_argument("--chunk", type=int, default=4096)
    parser.add_argument("--k", type=int, default=54, help="kept per chunk")
    a = parser.parse_args()
    dev, shape = a.device, (a.rows, a.chunk)
    g = torch.Generator().manual_seed(0)
    positions = [torch.rand(shape, generator=g).topk(a.k, dim=1).indices for _ in range(a.peers)]
    idx = torch.stack([p.sort(dim=1).values for p in positions]).to(dev)
    decades = torch.logspace(-4, 2, a.peers)[:, None, None]
    vals = (torch.randn(a.peers, a.rows, a.k, generator=g) * decades).to(dev)
    flat = (torch.arange(a.rows, device=dev)[None, :, None] * a.chunk + idx).reshape(-1)

    def fold() -> torch.Tensor:
        out = torch.zeros(shape, device=dev)
        for p in range(a.peers):
            out.scatter_add_(1, idx[p], vals[p])
        return out

    def index_put_acc() -> torch.Tensor:
        out = torch.zeros(a.rows * a.chunk, device=dev)
        return out.index_put_((flat,), vals.reshape(-1), accumulate=True).view(shape)

    def index_add() -> torch.Tensor:
        out = torch.zeros(a.rows * a.chunk, device=dev)
        return out.index_add_(0, flat, vals.reshape(-1)).view(shape)

    def timed_ms(run: Callable[[], torch.Tensor]) -> float:
        sync = torch.cuda.synchronize if torch.device(dev).type == "cuda" else (lambda: None)
        run()
        best = float("inf")
        for _ in range(5):
            sync()
            start = time.perf_counter()
            run()
            sync()
            best = min(best, time.perf_counter() - start)
        return round(best * 1e3, 3)

    reference = fold()
    report: dict = {"bench": "scatter_determinism", "peers_rows_chunk_k": [a.peers, *shape, a.k]}
    runs = (("fold", fold), ("index_put_acc", index_put_acc), ("index_add", index_add))
    for name, run in runs:
        outs = [run() for _ in range(3)]
        report[name] = {
            "ms": timed_ms(run),
            "bitwise_fold": all(torch.equal(o, reference) for o in outs),
            "repeatable": all(torch.equal(o, outs[0]) for o in outs),
            "max_abs_diff_from_fold": float((outs[0] - reference).abs().max()),
        }
    torch.use_deterministic_algorithms(True)
    outs = [index_add() for _ in range(3)]
    report["index_add_deterministic_mode"] = {
        "ms": timed_ms(index_add),
        "bitwise_fold": all(torch.equal(o, reference) for o in outs),
    }
    report["machine"] = machine_info(dev)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
