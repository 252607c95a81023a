"""The validator's window loop: observe, open, check, record, evaluate, rate, set weights.

A background :class:`~gauntlet.node.observer.Observer` polls every miner's bucket
while windows are open. For window ``w`` (processed once its observation has closed)
the model holds θ_w:

1. take the sealed uploads observed in time (or, if this validator's observation was
   incomplete, the lead's arrival book), fetch the reveals, open and decode them
   (fast filter: missing, late, invalid, unreadable);
2. check the valid ones: assigned pages, fingerprint sync, norm outliers, copies, replays;
3. the lead publishes the window's aggregation record: the peer set's members that
   passed every check;
4. evaluate a secret, unpredictable selection of the clean ones: loss on their own
   and on secret random pages, before and after applying each update alone;
5. step to θ_{w+1} by the lead's record (the lead by its own), advance the scoring state
   (OpenSkill match, uniqueness, penalties, decay); the lead publishes its peer set;
6. set weights every ``validator.weights_interval`` windows, save the state
   atomically, print the table, append it to the journal, publish the report.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass, replace
from pathlib import Path

from gauntlet.compress.aggregate import Delta
from gauntlet.config.schema import GauntletConfig
from gauntlet.node.arrival_book import borrow_arrivals, publish_book
from gauntlet.node.assignment import assigned_pages
from gauntlet.node.chain_weights import set_weights
from gauntlet.node.checks import (
    Verdict,
    check_window,
    mark_late,
    measure_updates,
    passed_uids,
    sketch_delta,
    step_magnitudes,
)
from gauntlet.node.crash_points import CrashPointError, armed_point, crash_point
from gauntlet.node.evaluation import (
    Update,
    aggregate_scales,
    evaluate_peers,
    loss_on,
    own_sample,
    window_seed,
)
from gauntlet.node.gather import Contribution, judge_window
from gauntlet.node.lead import publish_lead_artifacts
from gauntlet.node.lead_record import publish_window_record
from gauntlet.node.lifecycle import retry_local_write, retry_transient
from gauntlet.node.measured_update import (
    current_pay,
    measured_update,
    update_cosines,
    window_limits,
)
from gauntlet.node.observer import Observer, round_seconds_for
from gauntlet.node.records import follow_record
from gauntlet.node.replay import Lead, find_lead
from gauntlet.node.report_publish import publish_window
from gauntlet.node.report_table import window_table
from gauntlet.node.reveals import collect_reveals
from gauntlet.node.runtime import Runtime, StartupError, open_runtime
from gauntlet.node.spool import Spool
from gauntlet.node.status_page import StatusBoard, WeightsAttempt, status_routes
from gauntlet.node.validator_state import ValidatorFiles
from gauntlet.node.window_report import window_report
from gauntlet.score.config import ScoringConfig
from gauntlet.score.loss import Evaluation
from gauntlet.score.replay import AGGREGATE_UID, SketchEntry
from gauntlet.score.selection import select_peers
from gauntlet.score.state import ValidatorScores
from gauntlet.score.window import PeerWindow, advance_window
from gauntlet.telemetry import METRICS
from gauntlet.train.fingerprint import fingerprint
from gauntlet.train.objective import objective_at
from protocol.schemas import WindowReport
from protocol.windows import window_of

log = logging.getLogger(__name__)


@dataclass
class Validator:
    rt: Runtime
    files: ValidatorFiles
    secret: bytes
    state: ValidatorScores
    observer: Observer
    last_weights: WeightsAttempt | None = None  # the latest attempt to set weights on chain

    @property
    def scoring(self) -> ScoringConfig:
        return self.rt.config.scoring

    def assigned(self, uid: int, hotkey: str, window: int) -> list[int]:
        return assigned_pages(self.rt, uid, hotkey, window)

    def check(
        self, window: int, contributions: list[Contribution]
    ) -> tuple[dict[int, Verdict], dict, dict[int, float]]:
        """Verdicts, and the sketch and L2 norm of each valid update (measured once here,
        used again by evaluation), read from the payloads without decoding them
        (:func:`measure_updates`)."""
        rt = self.rt
        norms, sketches = measure_updates(contributions, rt.decoder, self.scoring)
        own_print = fingerprint(rt.model, window)
        sizes = [(name, p.numel()) for name, p in rt.model.named_parameters()]
        magnitudes = step_magnitudes(
            rt.last_aggregate, window, sizes, len(own_print), rt.config.train.outer_lr
        )
        verdicts = check_window(
            contributions,
            window=window,
            assigned=lambda uid, hotkey: self.assigned(uid, hotkey, window),
            own_fingerprint=own_print,
            magnitudes=magnitudes,
            sketches=sketches,
            norms=norms,
            history=self.state.sketches,
            config=self.scoring,
        )
        return verdicts, sketches, norms

    def choose(self, window: int, passed: list[int]) -> list[int]:
        """The peers this validator evaluates for ``window``: a secret, unpredictable draw."""
        cfg = self.scoring
        return select_peers(
            passed,
            self.state.ordinals(cfg.ordinal_z),
            self.state.starvation(),
            cfg.eval_budget,
            cfg.eval_min_count,
            window_seed(self.secret, window),
            bins=cfg.rating_bins,
            starvation_power=cfg.starvation_power,
        )

    def measure(
        self,
        window: int,
        contributions: list[Contribution],
        scales: dict[int, float],
        uids: list[int],
        *,
        member_check: bool = False,
    ) -> dict[int, Evaluation]:
        """Losses of ``uids``' contributions applied alone as the aggregate would apply them
        (times their ``scales``), on a secret sample of their declared pages and on the
        window's secret random pages; ``member_check``: the lead's gate on peer-set members
        (``validator.member_check_batches`` batches, no control)."""
        by_uid = {c.uid: c for c in contributions}
        sample = self.rt.config.validator.own_pages
        chosen = [
            c for uid in uids if (c := by_uid[uid]).tensors is not None and c.manifest is not None
        ]
        limits = self.alignment_limits(window, chosen)
        # The member check measures at the aggregate's own scale; evaluation at the steps
        # asked for (validator.own_step, validator.random_step), the random one relative.
        settings = self.rt.config.validator
        own = 1.0 if member_check else settings.own_step
        random_step = 1.0 if member_check else settings.random_step / own
        updates: dict[int, tuple[list[int], Update]] = {
            c.uid: (
                own_sample(self.secret, window, c.uid, list(c.manifest.page_ids), sample),  # type: ignore[union-attr]
                functools.partial(self.scaled_update, c, scales[c.uid] * own, limits.get(c.uid)),
            )
            for c in chosen
        }
        batches = self.rt.config.validator.member_check_batches if member_check else None
        measured = evaluate_peers(
            self.rt, window, self.secret, updates, batches=batches, controls=not member_check,
            random_step=random_step,
        )  # fmt: skip
        return {
            uid: replace(ev, declared_pages=len(by_uid[uid].manifest.page_ids))  # type: ignore[union-attr]
            for uid, ev in measured.items()
        }

    def alignment_limits(self, window: int, contributions: list[Contribution]) -> dict[int, float]:
        """uid -> the alignment with the last aggregate that update is measured with, for
        each of ``contributions`` above the window's limit (:func:`window_limits`: their
        ``validator.novel_quantile``, or the same quantile weighted by what this validator
        currently pays each sender, its weight, where lower); the others are measured as
        sent. Empty when ``validator.measure_novel`` is off or there is no last aggregate.
        Read from the payloads (:func:`update_cosines`): no update is decoded for it."""
        rt = self.rt
        last = rt.last_aggregate
        if not rt.config.validator.measure_novel or last is None or not contributions:
            return {}
        limit, above = window_limits(
            update_cosines(contributions, rt.decoder, last),
            current_pay(self.state, contributions, self.scoring.weight_power),
            rt.config.validator.novel_quantile,
        )
        log.info(
            "window %d: alignment with the last aggregate, limit %.3f; measured at it: %s",
            window, limit, {uid: round(cos, 3) for uid, cos in above.items()} or "none",
        )  # fmt: skip
        return dict.fromkeys(above, limit)

    def scaled_update(
        self, contribution: Contribution, scale: float, limit: float | None = None
    ) -> Delta:
        """What evaluation applies for ``contribution`` (:func:`measured_update`): decoded
        when applied, then dropped; its alignment with the last aggregate lowered to
        ``limit`` (:meth:`alignment_limits`; None: as sent), times its aggregate ``scale``."""
        rt = self.rt
        thin = rt.config.validator.measure_thin
        return measured_update(contribution, rt.decoder, scale, rt.last_aggregate, limit, thin)

    def scales(self, norms: dict[int, float], passed: list[int]) -> dict[int, float]:
        """The aggregate's factor for each of ``passed``, from the norms the checks measured."""
        compress = self.rt.config.compress
        passed_norms = {uid: norms[uid] for uid in passed}
        return aggregate_scales(passed_norms, compress.normalise, compress.clip_norm)

    def evaluate(
        self, window: int, contributions: list[Contribution], scales: dict[int, float]
    ) -> dict[int, Evaluation]:
        """Loss evaluation of the peers chosen this window among those ``scales`` covers
        (the ones that passed every check)."""
        return self.measure(window, contributions, scales, self.choose(window, sorted(scales)))

    async def contributions(self, window: int, lead: Lead | None) -> list[Contribution] | None:
        """Every miner's verdict and opened update for ``window``; None when this validator
        cannot judge timeliness (its observation was incomplete and no lead's book helps)."""
        rt = self.rt
        arrivals = await self.observer.closed(window)
        _, miners = await rt.peers.miners(rt.chain)
        is_lead = lead is not None and lead.hotkey == rt.hotkey
        if arrivals.complete or is_lead:
            await publish_book(rt, arrivals)
        if not arrivals.complete and not is_lead:
            borrowed = (
                None
                if lead is None
                else await borrow_arrivals(rt, lead, window, miners, self.observer.spool)
            )
            if borrowed is None:
                return None
            log.info("window %d: judged from the lead's arrival book", window)
            arrivals = borrowed
        if not arrivals.complete and is_lead:
            return None
        reveals = await collect_reveals(
            rt.chain,
            {p.uid: p for p in miners},
            window=window,
            netuid=rt.config.chain.netuid,
            observed=[uid for uid, seen in arrivals.accepted.items() if seen.sealed is not None],
            reveal_close=(await rt.timeline()).reveal_close(window),
        )
        return await asyncio.to_thread(judge_window, miners, window, arrivals, reveals, rt.decoder)

    async def process(self, window: int) -> WindowReport:
        rt, cfg = self.rt, self.scoring
        lead = await find_lead(rt)
        is_lead = lead is not None and lead.hotkey == rt.hotkey
        contributions = await self.contributions(window, lead)
        if contributions is None:
            return await self.unobserved(window, lead)
        crash_point("judged")
        verdicts, sketches, norms = await asyncio.to_thread(self.check, window, contributions)
        crash_point("checked")
        passed = passed_uids(verdicts)
        scales = self.scales(norms, passed)
        used: list[Contribution] | None = None
        failed: set[int] = set()
        before = await self.validation_losses(window)  # θ_w: its next-token loss is in the record
        if is_lead:
            # Before the evaluation: every miner waits for the record to train the next
            # window, and the record needs only the members' loss checks.
            assert lead is not None
            used, failed = await publish_window_record(
                rt, cfg, functools.partial(self.measure, member_check=True), window, lead,
                contributions, passed, scales, norms=norms, validation_loss=before[0],
            )  # fmt: skip
        evaluations = await asyncio.to_thread(self.evaluate, window, contributions, scales)
        crash_point("evaluated")
        _, miners = await rt.peers.miners(rt.chain)
        await mark_late(verdicts, miners, window, (await rt.timeline()).observation_close(window))
        if not is_lead:
            await follow_record(rt, lead, window, {c.uid: c for c in contributions})
        elif used is None:
            rt.skip_window(window)
        else:
            rt.apply_outer_step(window, used)
        crash_point("stepped")
        after = await self.validation_losses(window)
        new_sketches = [
            SketchEntry.of(window, uid, values) for uid, values in sorted(sketches.items())
        ]
        if rt.last_aggregate is not None:  # as a free-rider would upload it: through the codec
            wire, _ = rt.codec.encode(rt.last_aggregate, None)
            resent = rt.codec.decode(wire, rt.shapes, rt.device)
            new_sketches.append(SketchEntry.of(window, AGGREGATE_UID, sketch_delta(resent, cfg)))
        observations = {
            uid: PeerWindow(
                hotkey=v.hotkey, outcome=v.outcome, sync=v.sync, evaluation=evaluations.get(uid)
            )
            for uid, v in verdicts.items()
        }
        self.state = advance_window(self.state, window, observations, cfg, new_sketches)
        crash_point("advanced")
        report = self.report(window, verdicts, evaluations, before, after)
        eligible = [uid for uid in passed if uid not in failed]
        await self.finish(window, report, lambda: self._lead_artifacts(is_lead, window, eligible))
        return report

    def standing(self, uid: int) -> float:
        """A miner's claim on a download slot when they are short: its final score, plus
        its liveness in [0, 1], so that before anyone is paid miners that show up come
        before ones that do not (a tarpit is ``missing``: its liveness falls)."""
        peer = self.state.peers.get(uid)
        return 0.0 if peer is None else peer.score + (peer.liveness or 0.0)

    async def validation_losses(self, window: int) -> tuple[float, float | None]:
        """The model's next-token loss on the validation pages, and in a superposition
        phase also the phase's own loss (the one miners train and peers are scored by);
        next-token loss is the curve that stays comparable across the switch."""
        rt = self.rt
        validation = rt.dataset.validation_page_ids()[: rt.config.validator.validation_pages]
        plain = await asyncio.to_thread(loss_on, rt, validation, 0)
        objective = objective_at(rt.config.train, window)
        if not objective.superposition:
            return plain, None
        return plain, await asyncio.to_thread(loss_on, rt, validation, 0, objective)

    async def _lead_artifacts(self, is_lead: bool, window: int, passed: list[int]) -> None:
        if is_lead:
            await publish_lead_artifacts(self.rt, window, self.state.peers, passed)

    async def unobserved(self, window: int, lead: Lead | None) -> WindowReport:
        """A window this validator cannot judge: nobody is scored or blamed for it; the model
        still follows the lead's record (the lead itself publishes an empty one at once, so
        the window is skipped everywhere without anyone waiting for the record deadline:
        miners waiting for it lost the next window after a chain outage)."""
        rt = self.rt
        log.warning("window %d: not observed in full; not scoring it", window)
        METRICS.error("window_unobserved")
        await follow_record(rt, lead, window)
        self.state = replace(self.state, last_window=window)
        losses = await self.validation_losses(window)
        report = self.report(window, {}, {}, losses, losses)
        await self.finish(window, report, None)
        return report

    async def finish(self, window: int, report: WindowReport, lead_artifacts) -> None:
        """Weights, state, journal and the public report of a processed window."""
        rt = self.rt
        if window % rt.config.validator.weights_interval == 0:
            weights = self.state.weights(self.scoring.weight_power)
            self.last_weights = await set_weights(rt, weights, window)
            crash_point("weights_set")
        state = self.state
        await retry_local_write(
            lambda: self.files.commit_window(state, report), "state and journal"
        )
        crash_point("committed")
        self.observer.spool.prune(window + 1)  # judged and committed: its uploads are done with
        log.info("%s\n%s", f"window {window}: model at window {rt.window}", window_table(report))
        await publish_window(rt, report, lead_artifacts)

    def report(
        self,
        window: int,
        verdicts: dict[int, Verdict],
        evaluations: dict[int, Evaluation],
        before: tuple[float, float | None],
        after: tuple[float, float | None],
    ) -> WindowReport:
        """``before`` and ``after``: :meth:`validation_losses` of θ_w and θ_{w+1}."""
        return window_report(
            window,
            self.rt.hotkey,
            objective_at(self.rt.config.train, window).bag,
            verdicts,
            evaluations,
            self.state,
            self.scoring,
            validation=(before[0], after[0]),
            phase=(before[1], after[1]),
        )


async def first_window(rt: Runtime, state: ValidatorScores) -> int:
    """Resume after the last finished window, unless that is too far back to still be stored."""
    current = window_of(await rt.chain.current_block(), rt.config.chain.blocks_per_window)
    if state.last_window < 0:
        return current
    resume = state.last_window + 1
    horizon = current - rt.config.storage.retention_windows // 2
    if resume < horizon:
        log.warning(
            "state ends at window %d, too far back to replay; resuming at %d",
            state.last_window,
            current,
        )
        return current
    return resume


async def run_validator(config: GauntletConfig) -> None:
    try:
        armed = armed_point()
    except CrashPointError as exc:
        raise StartupError(str(exc)) from exc
    if armed:
        log.warning("fault injection: this validator will SIGKILL itself at %r", armed)
    rt = await open_runtime(config, role="validator")
    files = ValidatorFiles(Path(config.node.state_dir).expanduser(), rt.hotkey)
    files.state.parent.mkdir(parents=True, exist_ok=True)
    spool = Spool(files.spool, payloads_in_flight=config.validator.payloads_in_flight)
    timeline = await rt.timeline()
    observer = Observer(
        rt, timeline, config.validator.poll_seconds, spool,
        round_seconds=round_seconds_for(timeline, await rt.chain.block_time()),
    )  # fmt: skip
    watching = asyncio.create_task(observer.run(), name="observer")
    validator = Validator(
        rt, files, files.load_secret(config.validator.eval_secret), files.load_state(), observer
    )
    observer.priority = validator.standing
    log.info(
        "validator uid %d hotkey %s on netuid %d (state: last window %d)",
        rt.uid, rt.hotkey, config.chain.netuid, validator.state.last_window,
    )  # fmt: skip
    board = StatusBoard(config.telemetry.status_history)
    board.load_journal(files.journal)
    crash_point("start")
    try:
        await rt.serve_telemetry("validator", status_routes(board))
        start = await retry_transient(first_window, rt, validator.state)
        await retry_transient(rt.catch_up, start)
        done = 0
        while not config.node.max_windows or done < config.node.max_windows:
            METRICS.window.set(rt.window)
            report = await retry_transient(validator.process, rt.window)
            board.add(report, validator.last_weights)
            METRICS.observe_report(report)
            done += 1
    finally:
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
        observer.close()
        await rt.close()
