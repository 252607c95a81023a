"""What a localnet run measured, kept as it runs and written to ``results.json``.

The run's nodes (with the behaviour each miner was given), the lead validator's
view of every window (validation loss, and per uid status, score, rating and
weight) and the chain's incentive sampled after each window. The summary
numbers (honest vs adversarial share of incentive, loss first/last, whether
more compute earned more) are pure functions of these values.
"""

from __future__ import annotations

import math
import resource
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from protocol.schemas import WindowReport

HONEST = "honest"


class _Model(BaseModel):
    # NaN losses (a diverged model) must survive the round trip through results.json.
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")


class RunMeta(_Model):
    scenario: str = "default"
    seed: int | None = None
    model: str = Field(default="", description="model config name, e.g. 'tiny'")
    windows: int = Field(default=0, ge=0, description="windows the run was asked for")
    block_time: float = Field(default=0.0, ge=0, description="seconds per simulated block")
    blocks_per_window: int | None = None
    started: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    finished: datetime | None = None
    wall_seconds: float | None = None
    peak_rss_mib: float | None = Field(default=None, description="largest process RSS, MiB")


class NodeInfo(_Model):
    name: str
    uid: int = Field(ge=0)
    role: Literal["validator", "miner"]
    behaviour: str = HONEST
    pages: int | None = Field(
        default=None, description="compute budget: pages trained on per window"
    )
    stake: float | None = None

    @property
    def honest(self) -> bool:
        return self.behaviour == HONEST


class PeerWindow(_Model):
    """One uid in the lead validator's report of one window (see PeerResult for each field)."""

    status: str
    reason: str = ""
    score: float
    rating: float | None = None
    weight: float
    sync: float | None = None
    own_improvement: float | None = None
    random_improvement: float | None = None
    own_advantage: float | None = None
    uniqueness: float | None = None
    declared_pages: int | None = None  # evaluated: the pages its contribution declared


class WindowResult(_Model):
    window: int = Field(ge=0)
    validation_loss_before: float
    validation_loss_after: float
    bag: int = Field(default=1, ge=1, description="tokens per position in the window's phase")
    phase_loss_after: float | None = Field(
        default=None, description="superposition phase: that loss of θ_{window+1}"
    )
    peers: dict[int, PeerWindow] = Field(default_factory=dict)
    # Chain incentive per uid after this window; None when it was not sampled (e.g. outage).
    incentive: dict[int, float] | None = None


@dataclass(frozen=True)
class Summary:
    honest_share: float | None
    adversarial_share: float | None
    loss_first: float | None
    loss_last: float | None
    rank_correlation: float | None


class RunResults(_Model):
    meta: RunMeta = Field(default_factory=RunMeta)
    nodes: list[NodeInfo] = Field(default_factory=list)
    windows: list[WindowResult] = Field(default_factory=list)  # ascending by window

    # -- accumulation ------------------------------------------------------------

    def add_node(
        self,
        name: str,
        uid: int,
        role: Literal["validator", "miner"],
        behaviour: str = HONEST,
        *,
        pages: int | None = None,
        stake: float | None = None,
    ) -> NodeInfo:
        """Record a node; a second node with the same uid replaces the first."""
        node = NodeInfo(
            name=name, uid=uid, role=role, behaviour=behaviour, pages=pages, stake=stake
        )
        self.nodes = [n for n in self.nodes if n.uid != uid] + [node]
        self.nodes.sort(key=lambda n: n.uid)
        return node

    def add_report(self, report: WindowReport) -> WindowResult:
        """Record the lead validator's report; a repeated window replaces the earlier one."""
        old = self.window(report.window)
        result = WindowResult(
            window=report.window,
            validation_loss_before=report.validation_loss_before,
            validation_loss_after=report.validation_loss_after,
            bag=report.bag,
            phase_loss_after=report.phase_loss_after,
            peers={
                p.uid: PeerWindow(
                    status=p.status,
                    reason=p.reason,
                    score=p.score,
                    rating=p.rating,
                    weight=p.weight,
                    sync=p.sync,
                    own_improvement=p.own_improvement,
                    random_improvement=p.random_improvement,
                    own_advantage=p.own_advantage,
                    uniqueness=p.uniqueness,
                    declared_pages=p.declared_pages,
                )
                for p in report.peers
            },
            incentive=old.incentive if old else None,
        )
        self.windows = [w for w in self.windows if w.window != report.window] + [result]
        self.windows.sort(key=lambda w: w.window)
        return result

    def set_incentive(self, window: int, incentive: Mapping[int, float]) -> None:
        """Record the chain's incentive per uid sampled after ``window`` was reported."""
        result = self.window(window)
        if result is None:
            raise KeyError(f"no report for window {window}")
        result.incentive = {int(uid): float(v) for uid, v in incentive.items()}

    def finish(self, peak_rss_mib: float | None = None) -> None:
        """Stamp the end time and wall seconds; peak RSS is measured when not given."""
        self.meta.finished = datetime.now(timezone.utc)
        self.meta.wall_seconds = (self.meta.finished - self.meta.started).total_seconds()
        self.meta.peak_rss_mib = peak_rss_mib if peak_rss_mib is not None else measured_peak_rss()

    # -- lookups -----------------------------------------------------------------

    def window(self, window: int) -> WindowResult | None:
        return next((w for w in self.windows if w.window == window), None)

    def node(self, uid: int) -> NodeInfo | None:
        return next((n for n in self.nodes if n.uid == uid), None)

    def miners(self) -> list[NodeInfo]:
        return [n for n in self.nodes if n.role == "miner"]

    def behaviours(self) -> dict[int, str]:
        """Behaviour per miner uid."""
        return {n.uid: n.behaviour for n in self.miners()}

    def incentive_samples(self, *, late: bool = False) -> list[dict[int, float]]:
        """The chain's incentive sampled after each window, in window order (windows
        without a sample, e.g. during a chain outage, left out); ``late``: only those from
        the middle of the sampled windows on (the run's second half)."""
        sampled = [(w.window, w.incentive) for w in self.windows if w.incentive is not None]
        if late and sampled:
            middle = (sampled[0][0] + sampled[-1][0] + 1) // 2
            sampled = [(window, s) for window, s in sampled if window >= middle]
        return [s for _, s in sampled]

    def final_incentive(self) -> dict[int, float] | None:
        """The latest incentive sample, or None if none was taken."""
        sampled = self.incentive_samples()
        return sampled[-1] if sampled else None

    def mean_incentive(self, *, late: bool = False) -> dict[int, float]:
        """uid -> the chain's incentive averaged over every sample of the run: what a miner
        earned over the run (the last sample says only where it ended, which flatters a
        miner that worked early and then did less, like ``coast``). Empty if none was taken.

        ``late``: over the samples of the run's second half only (from its middle window
        on): the rate a strategy is paid once the network has settled, without the warm-up
        every miner's uniqueness and rating start from, and without resting on one sample.
        The last sample alone is a single draw of a series that moves by a factor of 2-4
        between windows: in the 40-window adaptive runs of 2026-12-05 it put `weak-control`
        at 2.1-2.4x the honest median per page where its pay over windows 20-39 was
        0.55-0.58x (docs/runs.md, "Pay over the second half")."""
        sampled = self.incentive_samples(late=late)
        uids = sorted({uid for sample in sampled for uid in sample})
        return {uid: sum(s.get(uid, 0.0) for s in sampled) / len(sampled) for uid in uids}

    def pages_processed(self) -> dict[int, int]:
        """Miner uid -> the pages its accepted (``ok``) contributions declared over the run,
        in the windows the lead evaluated it (the report gives declared pages only there)."""
        processed = {n.uid: 0 for n in self.miners()}
        for result in self.windows:
            for uid, peer in result.peers.items():
                if uid in processed and peer.status == "ok":
                    processed[uid] += peer.declared_pages or 0
        return processed

    def final_weights(self) -> dict[int, float]:
        """The lead validator's weight per uid in the last reported window."""
        if not self.windows:
            return {}
        return {uid: p.weight for uid, p in self.windows[-1].peers.items()}

    # -- summary -----------------------------------------------------------------

    def summary(self) -> Summary:
        final = self.final_incentive()
        shares = incentive_shares(final, self.behaviours()) if final is not None else None
        honest = {n.uid: n.pages for n in self.miners() if n.honest}
        return Summary(
            honest_share=shares[0] if shares else None,
            adversarial_share=shares[1] if shares else None,
            loss_first=self.windows[0].validation_loss_before if self.windows else None,
            loss_last=self.windows[-1].validation_loss_after if self.windows else None,
            rank_correlation=(
                compute_incentive_correlation(honest, final) if final is not None else None
            ),
        )

    def summary_line(self) -> str:
        return summary_line(self.summary())

    # -- files ---------------------------------------------------------------------

    def write(self, path: Path) -> None:
        """Write results.json atomically (a reader never sees half a file)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.model_dump_json(indent=2))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> RunResults:
        return cls.model_validate_json(Path(path).read_text())


# -- pure summary functions ------------------------------------------------------


def incentive_shares(
    incentive: Mapping[int, float], behaviours: Mapping[int, str]
) -> tuple[float, float] | None:
    """(honest, adversarial) fractions of the incentive paid to the miners in ``behaviours``.

    Every behaviour other than ``"honest"`` counts as adversarial; uids that are
    not miners (validators, strangers) are left out, a miner missing from
    ``incentive`` earned 0. None when the miners earned nothing at all.
    """
    honest = sum(incentive.get(uid, 0.0) for uid, b in behaviours.items() if b == HONEST)
    adversarial = sum(incentive.get(uid, 0.0) for uid, b in behaviours.items() if b != HONEST)
    total = honest + adversarial
    if total <= 0:
        return None
    return honest / total, adversarial / total


def shares_over_windows(results: RunResults) -> list[tuple[int, float, float]]:
    """(window, honest share, adversarial share) for every window with a usable sample."""
    behaviours = results.behaviours()
    out = []
    for w in results.windows:
        shares = incentive_shares(w.incentive, behaviours) if w.incentive is not None else None
        if shares is not None:
            out.append((w.window, *shares))
    return out


def average_ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing the mean of the ranks they span ([10, 20, 20] -> [1, 2.5, 2.5])."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman's rank correlation (Pearson's r of the average ranks, so ties are handled).

    None with fewer than 3 pairs or when either side does not vary.
    """
    if len(xs) != len(ys):
        raise ValueError("spearman needs two sequences of the same length")
    if len(xs) < 3:
        return None
    rx, ry = average_ranks(xs), average_ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    sxx = sum((a - mx) ** 2 for a in rx)
    syy = sum((b - my) ** 2 for b in ry)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def compute_incentive_correlation(
    pages: Mapping[int, int | None], incentive: Mapping[int, float]
) -> float | None:
    """Spearman correlation of honest miners' compute budget with their incentive.

    ``pages`` holds the honest miners (uid -> budget); those without a
    budget are left out, one missing from ``incentive`` earned 0.
    """
    uids = sorted(uid for uid, budget in pages.items() if budget is not None)
    return spearman(
        [float(pages[uid] or 0) for uid in uids], [incentive.get(uid, 0.0) for uid in uids]
    )


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.1f}%"


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def summary_line(s: Summary) -> str:
    """E.g. 'honest incentive 97.1%, adversarial 2.9%, validation loss 5.58 -> 3.21,
    compute/incentive rank correlation 0.80' ('-' for what is unknown)."""
    return (
        f"honest incentive {_pct(s.honest_share)}, adversarial {_pct(s.adversarial_share)}, "
        f"validation loss {_num(s.loss_first, '.2f')} -> {_num(s.loss_last, '.2f')}, "
        f"compute/incentive rank correlation {_num(s.rank_correlation, '.2f')}"
    )


def measured_peak_rss() -> float | None:
    """Largest RSS, MiB, of this process and its reaped children (the nodes, once stopped)."""
    try:
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    except (OSError, ValueError):
        return None
    unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return max(own, children) * unit / 2**20
