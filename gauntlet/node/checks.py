"""The validator's per-window checks, from gathered contributions to scoring outcomes.

Fast filter verdicts (missing, late, invalid, unreadable) come from gathering;
here the valid contributions are checked further: pages must be the assigned
ones, the model fingerprint must be in sync, the norm no outlier, and the update
must not be mostly explained by known updates: a combination of contributions of this
window observed before it (a copy) or of recent windows' contributions and aggregates
(a replay). The maths is in :mod:`gauntlet.score`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from gauntlet.compress.aggregate import Delta
from gauntlet.node.gather import Contribution, Decoder
from gauntlet.node.peers import Peer
from gauntlet.node.reveals import stored_late
from gauntlet.score.config import DESYNCED, LATE, MISSING, OK, OUTLIER, WRONG_PAGES, ScoringConfig
from gauntlet.score.copies import find_copies
from gauntlet.score.norms import norm_outliers
from gauntlet.score.pages import check_declared_pages
from gauntlet.score.replay import SketchEntry, sketch_rows
from gauntlet.score.sync import estimate_steps_behind, sync_score
from gauntlet.train.fingerprint import coordinates


@dataclass(frozen=True)
class Verdict:
    uid: int
    hotkey: str
    outcome: str
    sync: float = 1.0
    reason: str = ""


def passed_uids(verdicts: Mapping[int, Verdict]) -> list[int]:
    """The uids whose contribution passed every check so far (outcome ``OK``)."""
    return [uid for uid, v in verdicts.items() if v.outcome == OK]


def sketch_delta(delta: Delta, config: ScoringConfig) -> np.ndarray:
    """Count-sketch of the update, float64 ``(dim,)``: parameters in sorted-name order form
    one flat vector, of which every ``stride``-th coordinate is sketched, the stride chosen
    so about ``config.sketch_coordinates`` are (all of them when that is 0 or larger than
    the model). Values are picked on the update's device; only they travel to the CPU."""
    sizes = [(name, delta[name].numel()) for name in sorted(delta)]
    return sketch_values(sizes, lambda name, local: delta[name].detach().reshape(-1)[local], config)


def sketch_values(
    sizes: Sequence[tuple[str, int]],
    pick: Callable[[str, torch.Tensor], torch.Tensor],
    config: ScoringConfig,
) -> np.ndarray:
    """:func:`sketch_delta` of an update that ``pick(name, flat positions)`` reads entries
    of (parameters ``sizes``, name and element count, in sorted-name order)."""
    return sketches_of(sizes, lambda name, local: pick(name, local)[None], 1, config)[0]


def sketches_of(
    sizes: Sequence[tuple[str, int]],
    pick: Callable[[str, torch.Tensor], torch.Tensor],
    count: int,
    config: ScoringConfig,
) -> list[np.ndarray]:
    """:func:`sketch_delta` of ``count`` updates at once, ``pick(name, flat positions)``
    reading every update's entries ``[count, positions]``: a decoded update, or payloads
    read without decoding them (:func:`measure_updates`). Each parameter's entries travel
    to the CPU once for all the updates, and its buckets are hashed once; each update's
    sketch is the one it would have alone."""
    seed = config.sketch_seed.encode()
    total_size = sum(size for _, size in sizes)
    wanted = config.sketch_coordinates
    stride = 1 if not wanted or wanted >= total_size else -(-total_size // wanted)
    totals = np.zeros((count, config.sketch_dim))
    offset = 0
    for name, size in sizes:
        first = (-offset) % stride  # past the end of a parameter smaller than the stride
        local = torch.arange(first, max(first, size), stride)
        values = pick(name, local).to("cpu", torch.float64).numpy()
        positions = local.numpy().astype(np.uint64) + np.uint64(offset)
        totals += sketch_rows(values, positions, config.sketch_dim, seed)
        offset += size
    return list(totals)


def delta_norm(delta: Delta) -> float:
    """L2 norm of the whole update (float64 accumulation)."""
    return float(sum(t.detach().to(torch.float64).pow(2).sum() for t in delta.values())) ** 0.5


def measure_updates(
    contributions: Sequence[Contribution], decoder: Decoder, config: ScoringConfig
) -> tuple[dict[int, float], dict[int, np.ndarray]]:
    """The L2 norm and the sketch of every ``ok`` contribution's update, by uid, read from
    its validated payload without decoding it: the norm from the kept values (Parseval:
    :meth:`Codec.norms`) and the sketch from the entries it samples
    (:meth:`Codec.entries_of`). Equal to those of the decoded update within float
    rounding; the checks hold no model-sized update whatever the number of miners (at
    1.2B one is 4.8 GB in float32). All contributions are read together, parameter by
    parameter, so the operations (each a launch on a GPU) and the waits on the device do
    not grow with the miners."""
    codec, shapes, device = decoder.codec, decoder.shapes, decoder.device
    sizes = [(name, math.prod(shapes[name])) for name in sorted(shapes)]
    payloads = {c.uid: c.tensors for c in contributions if c.ok and c.tensors is not None}
    if not payloads:
        return {}, {}
    listed = list(payloads.values())

    def pick(name: str, local: torch.Tensor) -> torch.Tensor:
        return codec.entries_of(listed, name, shapes[name], local, device)

    norms = codec.norms(listed, shapes, device)
    sketches = sketches_of(sizes, pick, len(listed), config)
    return dict(zip(payloads, norms, strict=True)), dict(zip(payloads, sketches, strict=True))


def step_magnitudes(
    last_step: Delta | None, window: int, sizes: list[tuple[str, int]], count: int, lr: float
) -> list[float]:
    """|θ_w − θ_{w−1}| at window ``w``'s fingerprint coordinates (zeros before any step)."""
    picks = coordinates(window, sizes, count)
    if last_step is None:
        return [0.0] * len(picks)
    return [abs(lr * float(last_step[name].reshape(-1)[index])) for name, index in picks]


def check_window(
    contributions: Sequence[Contribution],
    *,
    window: int,
    assigned: Callable[[int, str], list[int]],
    own_fingerprint: list[float],
    magnitudes: list[float],
    sketches: Mapping[int, np.ndarray],
    norms: Mapping[int, float],
    history: Sequence[SketchEntry],
    config: ScoringConfig,
) -> dict[int, Verdict]:
    """Each miner's outcome for ``window``; ``sketches`` and ``norms`` hold one per valid
    contribution. Order: pages, sync, norm outlier, then copies and replays among the rest
    (:func:`gauntlet.score.copies.find_copies`).

    The window's norm statistics are taken only over contributions that passed the page
    and sync checks: sybil uploads with garbage fingerprints or pages cannot move the
    median that decides who is an outlier."""
    verdicts: dict[int, Verdict] = {}
    in_sync: dict[int, float] = {}
    for c in contributions:
        if not c.ok or c.manifest is None:
            verdicts[c.uid] = Verdict(c.uid, c.hotkey, c.status, reason=c.reason)
            continue
        pages = check_declared_pages(c.manifest.page_ids, assigned(c.uid, c.hotkey))
        if not pages.ok:
            verdicts[c.uid] = Verdict(c.uid, c.hotkey, WRONG_PAGES, reason=pages.reason)
            continue
        behind = estimate_steps_behind(c.manifest.fingerprint, own_fingerprint, magnitudes)
        sync = sync_score(behind, config.sync_max_steps, config.sync_shape)
        if sync <= 0:
            verdicts[c.uid] = Verdict(
                c.uid, c.hotkey, DESYNCED, 0.0, f"about {behind:.1f} windows behind"
            )
            continue
        in_sync[c.uid] = sync
    outliers = norm_outliers({uid: norms[uid] for uid in in_sync}, config.norm_ratio_limit)
    for c in contributions:
        if c.uid not in in_sync:
            continue
        sync = in_sync[c.uid]
        if c.uid in outliers:
            reason = f"update norm {outliers[c.uid]:.1f}x the window's median"
            verdicts[c.uid] = Verdict(c.uid, c.hotkey, OUTLIER, sync, reason)
            continue
        verdicts[c.uid] = Verdict(c.uid, c.hotkey, OK, sync)
    found = find_copies(
        {uid: sketches[uid] for uid in passed_uids(verdicts)},
        {c.uid: float(c.observed_block) for c in contributions},
        history,
        window,
        threshold=config.explained_threshold,
        max_sources=config.explain_max_sources,
    )
    for uid, finding in found.items():
        v = verdicts[uid]
        verdicts[uid] = Verdict(uid, v.hotkey, finding.outcome, v.sync, finding.reason(window))
    return dict(sorted(verdicts.items()))


async def mark_late(
    verdicts: dict[int, Verdict], miners: Sequence[Peer], window: int, close: int
) -> None:
    """``missing`` miners whose upload is there now (asked after the record is out) uploaded
    after the observation closed at block ``close``: ``late``, with that reason. Same
    penalty as missing; the operator sees why."""
    absent = {uid for uid, v in verdicts.items() if v.outcome == MISSING and not v.reason}
    if not absent:
        return
    for uid in await stored_late([p for p in miners if p.uid in absent], window):
        reason = f"uploaded after the observation closed at block {close}"
        verdicts[uid] = Verdict(uid, verdicts[uid].hotkey, LATE, reason=reason)
