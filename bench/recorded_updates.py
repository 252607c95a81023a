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

It prints JSON: the machine; per window the validation loss the run reported after the
outer step and the one rebuilt here (their largest difference is ``rebuilt_loss_gap``: the
rebuild is the run's model when it is small), the window's limit and, per uid, the relative
random-page improvement of each variant (a validator's match score); and per uid and
variant the mean over the windows measured. What the figures mean: docs/scoring.md
(*What the limit leaves of a boost*) and docs/localnet.md (*Thinning*).

    .venv/bin/python bench/recorded_updates.py RUN_DIR --uids 2,3,17 --from 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parents[1]))  # last: PYTHONPATH may override

import torch  # noqa: E402

from bench.machine import machine_info  # noqa: E402
from gauntlet.compress.chunked import ChunkedCodec  # noqa: E402
from gauntlet.compress.codec import Codec, build_codec, param_shapes  # noqa: E402
from gauntlet.compress.sparse import to_dense  # noqa: E402
from gauntlet.compress.thin import thinned  # noqa: E402
from gauntlet.config.schema import GauntletConfig  # noqa: E402
from gauntlet.data import PageDataset  # noqa: E402
from gauntlet.localnet.adaptive import boosted  # noqa: E402
from gauntlet.model import build_model, causal_lm_loss  # noqa: E402
from gauntlet.node.checkpoints import load_checkpoint  # noqa: E402
from gauntlet.node.checks import delta_norm  # noqa: E402
from gauntlet.node.evaluation import loss_on  # noqa: E402
from gauntlet.node.gather import Contribution, Decoder, decode_update, open_payload  # noqa: E402
from gauntlet.storage.filesystem import FilesystemStore  # noqa: E402
from gauntlet.train.evaluate import batch_losses  # noqa: E402
from gauntlet.train.novelty import alignment, inner, limit_alignment  # noqa: E402
from gauntlet.train.outer import apply_delta, restore  # noqa: E402
from protocol.container import Limits  # noqa: E402
from protocol.envelope import open_envelope  # noqa: E402
from protocol.errors import ProtocolError  # noqa: E402
from protocol.schemas import AggregationRecord  # noqa: E402
from protocol.sealed import open_reveal, open_sealed, unseal  # noqa: E402

Delta = dict[str, torch.Tensor]
VARIANTS = ("sent", "limit", "novel", "span", "masked", "boosted", "blend2", "sparse2", "sparse4")
BOOST_SHARE = 0.85  # the adaptive scenario's boost (scenarios/adaptive.toml)
SPARSER = {"sparse2": 2, "sparse4": 4}  # variant -> the factor its topk is divided by
MAX_BYTES = 1 << 30  # a local run's own files


@dataclass(frozen=True)
class _Node:
    """What the validator's loss functions read of a node (:class:`EvalNode`)."""

    config: GauntletConfig
    dataset: PageDataset
    model: torch.nn.Module
    device: torch.device


def _recording(run: Path) -> dict[str, Any]:
    return json.loads((run / "report" / "recording.json").read_text())


def _hotkeys(run: Path) -> dict[str, int]:
    """hotkey -> uid, from the run's recording (every hotkey a journal saw)."""
    return {
        hotkey: int(uid)
        for journal in _recording(run)["journals"]
        for window in journal
        for uid, hotkey in window.get("hotkeys", {}).items()
    }


def passed_uids(run: Path) -> dict[int, set[int]]:
    """window -> the uids whose upload the first validator found ``ok`` (passed every
    check): those the aggregate's median norm and the alignment limit are taken over."""
    journal = _recording(run)["journals"][0]
    return {w["window"]: {p[0] for p in w["peers"] if p[1] == "ok"} for w in journal}


def open_uploads(run: Path, decoder: Decoder, netuid: int) -> dict[tuple[int, int], Contribution]:
    """(window, uid) -> every upload of the run that opens and validates as a validator's
    would: sealed object, revealed key, payload (uploads without a valid reveal, or that
    do not open, are left out)."""
    uid_of = _hotkeys(run)
    out = {}
    for sealed_file in sorted(run.glob("stores/*/gauntlet/v2/contributions/*/*.sealed")):
        window, hotkey = int(sealed_file.parent.name), sealed_file.stem
        reveal = sealed_file.parents[2] / "reveals" / sealed_file.parent.name / f"{hotkey}.json"
        if hotkey not in uid_of or not reveal.exists():
            continue
        try:
            key = open_reveal(
                reveal.read_bytes(), expected_hotkey=hotkey, expected_window=window, netuid=netuid
            )
            sealed = open_sealed(
                sealed_file.read_bytes(),
                expected_hotkey=hotkey,
                expected_window=window,
                expected_netuid=netuid,
                max_bytes=MAX_BYTES,
            )
            opened = open_payload(uid_of[hotkey], hotkey, window, unseal(sealed, key), decoder)
        except ProtocolError:  # a bad reveal or seal: no validator opens it either
            continue
        if opened.ok:
            out[(window, opened.uid)] = opened
    return out


def recorded_uids(run: Path) -> dict[int, list[int]]:
    """window -> the uids the lead's aggregation record of it names (each record checked as
    its signer's); two different records of one window are an error."""
    out: dict[int, list[int]] = {}
    for path in sorted(run.glob("stores/*/gauntlet/v2/aggregations/*/*.json")):
        window = int(path.parent.name)
        record = open_envelope(
            path.read_bytes(), AggregationRecord, expected_signer=path.stem, expected_window=window
        )
        uids = sorted(c.uid for c in record.contributions)
        if out.setdefault(window, uids) != uids:
            raise ValueError(f"window {window} has two records naming different uploads")
    return out


def rebuild_start(
    run: Path,
    records: dict[int, list[int]],
    uploads: dict[tuple[int, int], Contribution],
    first: int,
) -> int:
    """The window to rebuild from: 0 (the initial model) when every recorded upload is still
    in the run's buckets, else the earliest window at or before ``first`` with a checkpoint
    of the lead's after which they all are (the one before it too: its aggregate is the
    first window's last one). A run whose buckets pruned more than that cannot be
    measured from ``first``: SystemExit says so."""
    gone = [w for w, uids in records.items() if any((w, uid) not in uploads for uid in uids)]
    if not gone:
        return 0
    after = max(gone) + 2
    for window in sorted(checkpoint_windows(run)):
        if after <= window <= first:
            return window
    raise SystemExit(
        f"{run}: the buckets no longer hold window {max(gone)}'s recorded uploads and no "
        f"checkpoint of window {after}-{first} is left to start from: measure from a later "
        "window (--from) or keep more windows (storage retention)"
    )


def checkpoint_windows(run: Path) -> set[int]:
    """The windows the run's buckets hold a checkpoint of (θ at the start of the window)."""
    return {
        int(path.parents[1].name)
        for path in run.glob("stores/*/gauntlet/v2/checkpoints/*/*/model.safetensors")
    }


def load_run_checkpoint(
    run: Path, window: int, model: torch.nn.Module, config: GauntletConfig, dataset_id: str
) -> None:
    """θ_window into ``model`` from the run's checkpoint of it, verified as a node verifies
    the lead's (signed manifest, hashes, shapes, finite values)."""
    (path,) = sorted(
        run.glob(f"stores/*/gauntlet/v2/checkpoints/{window:010d}/*/model.safetensors")
    )
    bucket, hotkey = path.parents[5], path.parent.name
    store = FilesystemStore(bucket.parent, bucket.name, create=False)
    asyncio.run(
        load_checkpoint(
            store,
            hotkey,
            window,
            model,
            netuid=config.chain.netuid,
            model_name=config.model.name,
            dataset_id=dataset_id,
        )
    )


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
    args = parser.parse_args()
    uids = [int(u) for u in args.uids.split(",")]
    variants = args.variants.split(",")
    for name in variants:
        if name not in VARIANTS:
            parser.error(f"unknown variant {name!r} (known: {', '.join(VARIANTS)})")
    torch.set_grad_enabled(False)

    run = args.run
    config = GauntletConfig.model_validate(json.loads((run / "node-config.json").read_text()))
    model = build_model(config.model.name, config.model.seed)
    shapes = param_shapes(model)
    codec = build_codec(config.compress.codec_params())
    netuid = config.chain.netuid
    decoder = Decoder(netuid, Limits(max_bytes=MAX_BYTES), codec, shapes, "cpu")
    uploads = open_uploads(run, decoder, netuid)
    records = recorded_uids(run)
    passed = passed_uids(run)
    reported = json.loads((run / "report" / "results.json").read_text())["windows"]
    dataset = PageDataset(Path(config.data.dataset_dir))
    node = _Node(config, dataset, model, torch.device("cpu"))
    pages = torch.randperm(
        dataset.num_train_pages, generator=torch.Generator().manual_seed(args.seed)
    )[: args.random_pages].tolist()
    validation = dataset.validation_page_ids()[: config.validator.validation_pages]

    def random_loss(window: int) -> float:
        batches = dataset.batches(
            pages,
            seq_len=config.train.seq_len,
            batch_size=config.validator.eval_batch_size,
            seed=window,
        )
        losses = batch_losses(model, batches, causal_lm_loss, max_batches=args.batches)
        return sum(losses) / len(losses)

    def aggregate_of(window: int) -> Delta | None:
        """The window's aggregate as the nodes formed it from the lead's record (None: no
        record or an empty one, so no outer step)."""
        used = [
            tensors
            for uid in records.get(window, [])
            if (tensors := uploads[(window, uid)].tensors) is not None
        ]
        if not used:
            return None
        return codec.decode_batch(
            used,
            shapes,
            normalise=config.compress.normalise,
            clip_norm=config.compress.clip_norm,
            device="cpu",
        )

    start = rebuild_start(run, records, uploads, args.first)
    if start > 0:  # the buckets keep the last windows only: from the lead's checkpoint
        load_run_checkpoint(run, start, model, config, dataset.dataset_id)
    windows: list[dict[str, Any]] = []
    rebuilt: list[dict[str, Any]] = []
    last = aggregate_of(start - 1) if start > 0 else None  # the last aggregate, as nodes hold it
    recent: list[Delta] = [] if last is None else [last]  # the last --span, newest first
    for window in range(start, max(records) + 1):
        if window >= args.first and last is not None:
            windows.append(
                _measure_window(
                    window, model, uploads, decoder, codec, shapes, recent, uids, variants,
                    random_loss, config.train.outer_lr, passed.get(window, set()),
                )
            )  # fmt: skip
        last = aggregate_of(window)
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
    means = {
        str(uid): {
            name: round(statistics.mean(vals), 5)
            for name in variants
            if (vals := [w["gains"][str(uid)][name] for w in windows
                         if w["gains"].get(str(uid), {}).get(name) is not None])
        }
        for uid in uids
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
) -> dict[str, Any]:
    """One window at θ_w (``model``): the limits and each uid's gain per variant, with the
    median norm and the limits taken over the ``passed`` uploads; ``recent``: the last
    aggregates, newest first."""
    last = recent[0]
    opened = {uid: c for (w, uid), c in uploads.items() if w == window and uid in passed}
    decoded = {uid: decode_update(c, decoder) for uid, c in opened.items()}
    median_norm = statistics.median(delta_norm(d) for d in decoded.values())
    last_sq = inner(last, last)
    cosines = {uid: alignment(d, last, last_sq) for uid, d in decoded.items()}
    limits = {"limit": max(0.0, statistics.median(cosines.values()))}
    masked: dict[int, Delta] = {}
    if "masked" in variants:  # every upload's own direction, for the window's median
        masked = {uid: masked_direction(codec, c, shapes, last) for uid, c in opened.items()}
        limits["masked"] = max(
            0.0, statistics.median(alignment(d, masked[uid]) for uid, d in decoded.items())
        )
    base = {name: p.detach().clone() for name, p in model.named_parameters()}
    before = random_loss(window)
    gains: dict[str, dict[str, float | None]] = {}
    for uid in uids:
        if uid not in decoded:
            continue
        previous = (
            decode_update(uploads[(window - 1, uid)], decoder)
            if "blend2" in variants and (window - 1, uid) in uploads
            else None
        )
        gains[str(uid)] = {}
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
            size = 0.0 if update is None else delta_norm(update)
            if update is None or size == 0:
                gains[str(uid)][name] = None
                continue
            scale = median_norm / size
            apply_delta(model, {n: t * scale for n, t in update.items()}, outer_lr)
            gains[str(uid)][name] = round((before - random_loss(window)) / before, 5)
            restore(model, base)
    return {
        "window": window,
        "limits": {k: round(v, 4) for k, v in limits.items()},
        "cosines": {str(uid): round(cosines[uid], 4) for uid in uids if uid in decoded},
        "gains": gains,
    }


if __name__ == "__main__":
    main()
