"""Measure a localnet run's uploads again, offline, at the model each was made for.

A run directory (``gauntlet localnet --localnet.run_dir``) keeps every miner's sealed
uploads and revealed keys, and the lead's aggregation records. This opens each upload as a
validator does (``open_payload``), rebuilds each window's aggregate from the record with
the nodes' own codec call, steps the initial model through them, and at each window's θ_w
measures the updates of the uids asked for on fixed random pages, in several ways
(``--variants``), each scaled to the window's median norm as the aggregate scales it:

    sent     as uploaded
    limit    its cosine with the last aggregate lowered to the window's median cosine (the
             validator's limit, without the pay-weighted median it also takes)
    novel    nothing along the last aggregate (cosine 0)
    span     nothing in the span of the last ``--span`` aggregates (older ones reach an
             upload through its error feedback)
    masked   ``limit`` with the last aggregate restricted to the update's own kept
             coefficients (what a sparse upload can carry of it), at the median of those
             cosines
    boosted  the update as the ``boost`` behaviour would send it with no error feedback: the
             last aggregate added as 0.85 of it, through the codec once, then at the limit
             (what the boost's construction alone does, without what its error feedback
             carries from earlier windows)
    blend2   the uid's own last two updates summed (a miner that uploads its momentum)
    sparse2  its largest half of the kept coefficients of each chunk (the codec at half its
             ``topk``, once, no error feedback), then at the limit; ``sparse4``: a quarter

``--steps 1,0.5`` measures every variant at each of those fractions of the median norm as
well (``name@0.5``: the step ``validator.random_step`` would measure the random pages at).
Per uid and window it also reports ``top_share``: the share of the upload's squared norm in
the largest quarter of each chunk's kept values, over the window's lower median of it
(:func:`gauntlet.compress.thin.top_share`; a ``thin`` upload is near 1.0 before the ratio).
``--loo`` adds each update's marginal gain at the window's aggregate of every passed upload
(``loo``: the random pages' loss with it left out, less the loss with all of them, relative;
what it adds to the step the network takes rather than what it does alone).
``--linear`` adds each variant's gain to first order (``name~lin``): ``lr · <g, Δ>`` at
the step measured, over the loss before, from one gradient ``g`` of the same random pages'
loss at θ_w for the window, so no curvature: what the direction is worth rather than how
far a step along it overshoots.
``--fresh-pages 1,3,5`` trains, at each measured window, one update per count on as many
random pages with the run's training settings, through the codec once with no error
feedback (a miner's first upload, or one restarted without its residual), and reports its
``top_share`` ratio and its gains like the uploads' (``fresh{n}``).

It prints JSON: the machine; per window the validation loss the run reported after the
outer step and the one rebuilt here (their largest difference is ``rebuilt_loss_gap``: the
rebuild is the run's model when it is small), the window's limit and, per uid, the relative
random-page improvement of each variant (a validator's match score); and per uid and
variant the mean over the windows measured. What the figures mean: docs/scoring.md
(*What the limit leaves of a boost*) and docs/runs.md (*Thinning*).

    .venv/bin/python bench/recorded_updates.py RUN_DIR --uids 2,3,17 --from 10
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parents[1]))  # last: PYTHONPATH may override

import torch  # noqa: E402

from bench.machine import machine_info  # noqa: E402
from bench.recorded_run import open_run  # noqa: E402
from gauntlet.compress.aggregate import median_norm as lower_median  # noqa: E402
from gauntlet.compress.chunked import ChunkedCodec  # noqa: E402
from gauntlet.compress.codec import Codec  # noqa: E402
from gauntlet.compress.sparse import to_dense  # noqa: E402
from gauntlet.compress.thin import thinned, top_share  # noqa: E402
from gauntlet.config.schema import GauntletConfig  # noqa: E402
from gauntlet.data import PageDataset  # noqa: E402
from gauntlet.localnet.adaptive import boosted  # noqa: E402
from gauntlet.model import causal_lm_loss  # noqa: E402
from gauntlet.node.checks import delta_norm  # noqa: E402
from gauntlet.node.evaluation import loss_on  # noqa: E402
from gauntlet.node.gather import Contribution, Decoder, decode_update  # noqa: E402
from gauntlet.node.miner import WindowPlan, train_window  # noqa: E402
from gauntlet.train.distributed import DistContext  # noqa: E402
from gauntlet.train.evaluate import batch_losses  # noqa: E402
from gauntlet.train.novelty import alignment, inner, limit_alignment  # noqa: E402
from gauntlet.train.outer import apply_delta, restore  # noqa: E402

Delta = dict[str, torch.Tensor]
VARIANTS = ("sent", "limit", "novel", "span", "masked", "boosted", "blend2", "sparse2", "sparse4")
BOOST_SHARE = 0.85  # the adaptive scenario's boost (scenarios/adaptive.toml)
SPARSER = {"sparse2": 2, "sparse4": 4}  # variant -> the factor its topk is divided by


@dataclass(frozen=True)
class _Node:
    """What the validator's loss functions read of a node (:class:`EvalNode`)."""

    config: GauntletConfig
    dataset: PageDataset
    model: torch.nn.Module
    device: torch.device


def masked_direction(
    codec: Codec, contribution: Contribution, shapes: dict[str, tuple[int, ...]], last: Delta
) -> Delta:
    """``last`` restricted to ``contribution``'s kept coefficients: its chunk coefficients
    at the upload's positions, decoded (what of ``last`` an upload of that support holds);
    ``last`` itself for a codec that keeps everything."""
    if not isinstance(codec, ChunkedCodec) or contribution.tensors is None:
        return last
    out = {}
    for name, shape in shapes.items():
        layout, _ = codec._layout(shape)
        coefficients = layout.to_chunks(last[name].float(), codec.dct)
        idx, _ = codec.read([contribution.tensors], name, "cpu", check=False)
        out[name] = to_dense(layout, idx, coefficients.gather(1, idx), codec.dct).view(shape)
    return out


def without_span(delta: Delta, directions: list[Delta]) -> Delta:
    """``delta`` less its projection on the span of ``directions`` (Gram-Schmidt, float64
    products), in place."""
    basis: list[Delta] = []
    for direction in directions:
        d = {n: t.double().clone() for n, t in direction.items()}
        for b in basis:
            along = inner(d, b)
            for n in d:
                d[n] -= along * b[n]
        size = delta_norm(d)
        if size > 1e-9 * max(1.0, delta_norm(direction)):
            basis.append({n: t / size for n, t in d.items()})
    for b in basis:
        along = inner(delta, b)
        for n, t in delta.items():
            t.sub_((along * b[n]).to(t.dtype))
    return delta


def variant(
    name: str,
    delta: Delta,
    last: Delta,
    limits: dict[str, float],
    masked: Callable[[], Delta],
    previous: Delta | None,
    recent: list[Delta],
    reboosted: Callable[[], Delta],
    sparser: Callable[[int], Delta | None] = lambda factor: None,
) -> Delta | None:
    """The update a variant measures (module doc); None when it needs what is missing."""
    delta = {n: t.clone() for n, t in delta.items()}
    if name == "sent":
        return delta
    if name == "limit":
        return limit_alignment(delta, last, limits["limit"])
    if name == "novel":
        return limit_alignment(delta, last, 0.0)
    if name == "span":
        return without_span(delta, recent)
    if name == "masked":
        return limit_alignment(delta, masked(), limits["masked"])
    if name == "boosted":
        return limit_alignment(reboosted(), last, limits["limit"])
    if name in SPARSER:
        thin = sparser(SPARSER[name])
        return None if thin is None else limit_alignment(thin, last, limits["limit"])
    if name == "blend2":
        return None if previous is None else {n: t + previous[n] for n, t in delta.items()}
    raise ValueError(f"unknown variant {name!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a localnet run directory (with report/)")
    parser.add_argument("--uids", required=True, help="comma-separated uids to measure")
    parser.add_argument("--from", dest="first", type=int, default=1, help="first window")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--random-pages", type=int, default=16)
    parser.add_argument("--batches", type=int, default=8, help="batches per measurement")
    parser.add_argument("--seed", type=int, default=0, help="draws the random pages")
    parser.add_argument("--span", type=int, default=4, help="aggregates the span variant removes")
    parser.add_argument("--steps", default="1", help="fractions of the median norm to measure at")
    parser.add_argument("--fresh-pages", default="", help="page counts of fresh updates to train")
    parser.add_argument(
        "--loo", action="store_true", help="also each update's gain at the window's aggregate"
    )
    parser.add_argument(
        "--linear", action="store_true", help="also each variant's gain to first order"
    )
    args = parser.parse_args()
    steps = [float(x) for x in args.steps.split(",")]
    fresh_pages = [int(x) for x in args.fresh_pages.split(",") if x]
    uids = [int(u) for u in args.uids.split(",")]
    variants = args.variants.split(",")
    for name in variants:
        if name not in VARIANTS:
            parser.error(f"unknown variant {name!r} (known: {', '.join(VARIANTS)})")
    torch.set_grad_enabled(False)

    run = args.run
    recorded = open_run(run)
    config, model, shapes, codec = recorded.config, recorded.model, recorded.shapes, recorded.codec
    reported = json.loads((run / "report" / "results.json").read_text())["windows"]
    dataset = recorded.dataset
    node = _Node(config, dataset, model, torch.device("cpu"))
    pages = torch.randperm(
        dataset.num_train_pages, generator=torch.Generator().manual_seed(args.seed)
    )[: args.random_pages].tolist()
    validation = dataset.validation_page_ids()[: config.validator.validation_pages]

    def random_batches(window: int) -> Iterator[torch.Tensor]:
        """The random pages' batches of ``window`` (the same for every update measured)."""
        return dataset.batches(
            pages,
            seq_len=config.train.seq_len,
            batch_size=config.validator.eval_batch_size,
            seed=window,
        )

    def random_loss(window: int) -> float:
        batches = random_batches(window)
        losses = batch_losses(model, batches, causal_lm_loss, max_batches=args.batches)
        return sum(losses) / len(losses)

    def random_gradient(window: int) -> Delta:
        """The gradient of :func:`random_loss`'s loss at the model as it is."""
        model.zero_grad(set_to_none=True)
        with torch.enable_grad():
            for batch in itertools.islice(random_batches(window), args.batches):
                (causal_lm_loss(model, batch) / args.batches).backward()
        grad = {
            n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None
        }
        model.zero_grad(set_to_none=True)
        return grad

    start = recorded.start(args.first)
    windows: list[dict[str, Any]] = []
    rebuilt: list[dict[str, Any]] = []
    # the last aggregate, as nodes hold it
    last = recorded.aggregate(start - 1) if start > 0 else None
    recent: list[Delta] = [] if last is None else [last]  # the last --span, newest first
    for window in range(start, max(recorded.records) + 1):
        # measured where there is a last aggregate and the first validator's judgement of the
        # window (a run stopped before its last report has none for that window)
        if window >= args.first and last is not None and recorded.passed.get(window):
            windows.append(
                _measure_window(
                    window, model, recorded.uploads, recorded.decoder, codec, shapes, recent, uids, variants,
                    random_loss, config.train.outer_lr, recorded.passed.get(window, set()), steps,
                    fresh_updates(node, window, fresh_pages, codec, shapes, args.seed),
                    args.loo,
                    random_gradient if args.linear else None,
                )
            )  # fmt: skip
        last = recorded.aggregate(window)
        if last is not None:
            apply_delta(model, last, config.train.outer_lr)
            recent = [last, *recent][: args.span]
        reported_loss = (
            reported[window]["validation_loss_after"] if window < len(reported) else None
        )
        if reported_loss is not None:
            rebuilt.append(
                {"window": window, "run": round(reported_loss, 4),
                 "rebuilt": round(loss_on(node, validation, 0), 4)}
            )  # fmt: skip
    names = ["top_share", "loo", "limit", *variants]
    keys = [_key(name, step) for name in names for step in steps]
    keys += [f"{key}~lin" for key in keys]
    means = {
        who: {
            key: round(statistics.mean(vals), 5)
            for key in dict.fromkeys(keys)
            if (vals := [w["gains"][who][key] for w in windows
                         if w["gains"].get(who, {}).get(key) is not None])
        }
        for who in [*map(str, uids), *(f"fresh{n}" for n in fresh_pages)]
    }  # fmt: skip
    report = {
        "bench": "recorded_updates",
        "run": str(run),
        "uids": uids,
        "variants": variants,
        "random_pages": pages,
        "rebuilt_loss_gap": max((abs(r["run"] - r["rebuilt"]) for r in rebuilt), default=None),
        "validation_loss": rebuilt,
        "mean_gain": means,
        "windows": windows,
        "machine": machine_info("cpu"),
    }
    print(json.dumps(report, indent=1))


def _key(name: str, step: float) -> str:
    """A reported gain's name: the variant, and the step when it is not the whole one."""
    return name if step == 1 else f"{name}@{step:g}"


def fresh_updates(
    node: _Node,
    window: int,
    counts: list[int],
    codec: Codec,
    shapes: dict[str, tuple[int, ...]],
    seed: int,
) -> dict[str, tuple[Delta, float | None]]:
    """``fresh{n}`` -> an update trained at θ_w (``node.model``, restored) on ``n`` random
    pages with the run's training settings, through the codec once with no error feedback
    (a first upload), and its :func:`top_share`."""
    out = {}
    draw = torch.Generator().manual_seed(seed * 1_000_003 + window)
    for n in counts:
        pages = torch.randperm(node.dataset.num_train_pages, generator=draw)[:n].tolist()
        with torch.enable_grad():
            trained, _ = train_window(
                node.config.train, node.dataset, node.model, WindowPlan(window, pages, True),
                device=node.device, dist=DistContext(),
            )  # fmt: skip
        payload, _ = codec.encode(trained.delta, None)
        out[f"fresh{n}"] = (codec.decode(payload, shapes, "cpu"), top_share(codec, payload, shapes))
    return out


def _leave_one_out(
    model: torch.nn.Module,
    decoded: dict[int, Delta],
    norms: dict[int, float],
    uids: list[int],
    median_norm: float,
    outer_lr: float,
    random_loss: Callable[[int], float],
    window: int,
) -> dict[int, float]:
    """uid -> what its update adds at the window's aggregate of every passed upload (each at
    the median norm, their mean, as ``per_peer`` forms it): the random pages' loss with it
    taken out, less the loss with all of them. Every update passed counts, members or not."""
    base = {name: p.detach().clone() for name, p in model.named_parameters()}
    scaled = {
        uid: {n: t * (median_norm / norms[uid]) for n, t in d.items()} for uid, d in decoded.items()
    }
    total = {n: sum(s[n] for s in scaled.values()) for n in next(iter(scaled.values()))}
    count = len(scaled)
    apply_delta(model, {n: t / count for n, t in total.items()}, outer_lr)
    with_all = random_loss(window)
    restore(model, base)
    out = {}
    for uid in uids:
        if uid not in scaled or count < 2:
            continue
        apply_delta(
            model, {n: (t - scaled[uid][n]) / (count - 1) for n, t in total.items()}, outer_lr
        )
        out[uid] = random_loss(window) - with_all
        restore(model, base)
    return out


def _measure_window(
    window: int,
    model: torch.nn.Module,
    uploads: dict[tuple[int, int], Contribution],
    decoder: Decoder,
    codec: Codec,
    shapes: dict[str, tuple[int, ...]],
    recent: list[Delta],
    uids: list[int],
    variants: list[str],
    random_loss: Callable[[int], float],
    outer_lr: float,
    passed: set[int],
    steps: list[float],
    fresh: dict[str, tuple[Delta, float | None]],
    leave_one_out: bool = False,
    random_gradient: Callable[[int], Delta] | None = None,
) -> dict[str, Any]:
    """One window at θ_w (``model``): the limits and, for each uid (and each ``fresh``
    update, at the limit), its gain per variant at each of ``steps`` times the median norm
    and its :func:`top_share` over the window's lower median, with the median norm, the
    limits and that median taken over the ``passed`` uploads; ``recent``: the last
    aggregates, newest first."""
    last = recent[0]
    opened = {uid: c for (w, uid), c in uploads.items() if w == window and uid in passed}
    decoded = {uid: decode_update(c, decoder) for uid, c in opened.items()}
    norms = {uid: delta_norm(d) for uid, d in decoded.items()}
    median_norm = statistics.median(norms.values())
    last_sq = inner(last, last)
    cosines = {uid: alignment(d, last, last_sq) for uid, d in decoded.items()}
    limits = {"limit": max(0.0, statistics.median(cosines.values()))}
    shares = {uid: top_share(codec, c.tensors, shapes) for uid, c in opened.items() if c.tensors}
    typical = lower_median([v for v in shares.values() if v is not None]) or None
    masked: dict[int, Delta] = {}
    if "masked" in variants:  # every upload's own direction, for the window's median
        masked = {uid: masked_direction(codec, c, shapes, last) for uid, c in opened.items()}
        limits["masked"] = max(
            0.0, statistics.median(alignment(d, masked[uid]) for uid, d in decoded.items())
        )
    base = {name: p.detach().clone() for name, p in model.named_parameters()}
    before = random_loss(window)
    grad = random_gradient(window) if random_gradient is not None else None

    def gain(name: str, update: Delta | None) -> dict[str, float | None]:
        """``update``'s relative random-page gain at each step (None: nothing to measure),
        and with a gradient its first-order gain, keyed as reported for variant ``name``
        (``name@step``, ``name@step~lin``)."""
        size = 0.0 if update is None else delta_norm(update)
        out: dict[str, float | None] = {}
        for step in steps:
            key = _key(name, step)
            if update is None or size == 0:
                out[key] = None
                continue
            if grad is not None:
                scale = outer_lr * step * median_norm / size
                linear = scale * sum(float((grad[n] * update[n]).sum()) for n in grad)
                out[f"{key}~lin"] = round(linear / before, 5)
            apply_delta(
                model, {n: t * (step * median_norm / size) for n, t in update.items()}, outer_lr
            )
            out[key] = round((before - random_loss(window)) / before, 5)
            restore(model, base)
        return out

    def ratio(share: float | None) -> float | None:
        return None if share is None or not typical else round(share / typical, 4)

    gains: dict[str, dict[str, float | None]] = {}
    marginal = (
        _leave_one_out(model, decoded, norms, uids, median_norm, outer_lr, random_loss, window)
        if leave_one_out
        else {}
    )
    for uid in uids:
        if uid not in decoded:
            continue
        previous = (
            decode_update(uploads[(window - 1, uid)], decoder)
            if "blend2" in variants and (window - 1, uid) in uploads
            else None
        )
        gains[str(uid)] = {"top_share": ratio(shares.get(uid))}
        if leave_one_out:
            gains[str(uid)]["loo"] = round(marginal[uid] / before, 5)
        for name in variants:
            update = variant(
                name,
                decoded[uid],
                last,
                limits,
                lambda u=uid: masked[u],
                previous,
                recent,
                lambda u=uid: codec.decode(
                    codec.encode(boosted(decoded[u], last, BOOST_SHARE), None)[0], shapes, "cpu"
                ),
                lambda factor, u=uid: thinned(codec, decoded[u], shapes, factor),
            )
            gains[str(uid)].update(gain(name, update))
    for who, (update, share) in fresh.items():
        limited = limit_alignment(update, last, limits["limit"])
        gains[who] = {"top_share": ratio(share)} | gain("limit", limited)
    return {
        "window": window,
        "limits": {k: round(v, 4) for k, v in limits.items()},
        "cosines": {str(uid): round(cosines[uid], 4) for uid in uids if uid in decoded},
        "gains": gains,
    }


if __name__ == "__main__":
    main()
