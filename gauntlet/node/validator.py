"""The validator's window loop: gather, check, evaluate, rate, set weights, publish.

For window ``w`` (processed once it has closed) the model holds θ_w:

1. gather every miner's contribution (fast filter: missing, late, invalid, unreadable);
2. check the valid ones: assigned pages, fingerprint sync, copies, replays;
3. evaluate a secret, unpredictable selection of the clean ones: loss on their own
   and on secret random pages, before and after applying each update alone;
4. advance the scoring state (OpenSkill match, uniqueness, penalties, decay);
5. apply the window's aggregate (θ_{w+1}); the lead also publishes its records;
6. set weights every ``validator.weights_interval`` windows, save the state
   atomically, print the table, append it to the journal, publish the report.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from gauntlet.chain.base import ChainError
from gauntlet.config.schema import GauntletConfig
from gauntlet.node.checks import (
    Verdict,
    check_window,
    delta_norm,
    passed_uids,
    sketch_delta,
    step_magnitudes,
)
from gauntlet.node.evaluation import evaluate_peers, loss_on, window_seed
from gauntlet.node.gather import Contribution
from gauntlet.node.lead import publish_lead_artifacts
from gauntlet.node.lifecycle import retry_transient
from gauntlet.node.report_table import window_table
from gauntlet.node.runtime import Runtime, open_runtime
from gauntlet.node.status_page import StatusBoard, status_routes
from gauntlet.node.validator_state import ValidatorFiles
from gauntlet.score.config import ScoringConfig
from gauntlet.score.loss import Evaluation
from gauntlet.score.replay import AGGREGATE_UID, SketchEntry
from gauntlet.score.selection import select_peers
from gauntlet.score.state import ValidatorScores
from gauntlet.score.window import PeerWindow, advance_window
from gauntlet.storage.base import StorageError
from gauntlet.telemetry import METRICS
from gauntlet.train.fingerprint import fingerprint
from protocol.assignment import assign_pages
from protocol.keys import window_report_key
from protocol.schemas import PeerResult, WindowReport
from protocol.windows import window_of

log = logging.getLogger(__name__)


@dataclass
class Validator:
    rt: Runtime
    files: ValidatorFiles
    secret: bytes
    state: ValidatorScores

    @property
    def scoring(self) -> ScoringConfig:
        return self.rt.config.scoring

    def assigned(self, uid: int, hotkey: str, window: int) -> list[int]:
        return assign_pages(
            netuid=self.rt.config.chain.netuid,
            uid=uid,
            hotkey=hotkey,
            window=window,
            dataset_id=self.rt.dataset.dataset_id,
            num_pages=self.rt.dataset.num_train_pages,
            pages_per_window=self.rt.config.data.pages_per_window,
        )

    def check(
        self, window: int, contributions: list[Contribution]
    ) -> tuple[dict[int, Verdict], dict]:
        rt = self.rt
        sketches = {
            c.uid: sketch_delta(c.delta, self.scoring) for c in contributions if c.ok and c.delta
        }
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
            norms={c.uid: delta_norm(c.delta) for c in contributions if c.ok and c.delta},
            history=self.state.sketches,
            config=self.scoring,
        )
        return verdicts, sketches

    def evaluate(
        self, window: int, contributions: list[Contribution], passed: list[int]
    ) -> dict[int, Evaluation]:
        """Loss evaluation of the peers chosen this window among ``passed``."""
        cfg = self.scoring
        chosen = select_peers(
            passed,
            self.state.ordinals(cfg.ordinal_z),
            self.state.starvation(),
            cfg.eval_budget,
            cfg.eval_min_count,
            window_seed(self.secret, window),
            bins=cfg.rating_bins,
            starvation_limit=cfg.starvation_limit,
        )
        by_uid = {c.uid: c for c in contributions}
        updates = {
            uid: (by_uid[uid].manifest.page_ids, by_uid[uid].delta)  # type: ignore[union-attr]
            for uid in chosen
            if by_uid[uid].delta is not None
        }
        return evaluate_peers(self.rt, window, self.secret, updates)  # type: ignore[arg-type]

    async def process(self, window: int) -> WindowReport:
        rt, cfg = self.rt, self.scoring
        contributions = await rt.gather_window(window)
        verdicts, sketches = self.check(window, contributions)
        passed = passed_uids(verdicts)
        evaluations = self.evaluate(window, contributions, passed)
        validation = rt.dataset.validation_page_ids()[: rt.config.validator.validation_pages]
        loss_before = loss_on(rt, validation, seed=0)
        used = await rt.outer_step(window, contributions)
        loss_after = loss_on(rt, validation, seed=0)
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
        weights = self.state.weights(cfg.weight_power)
        if window % rt.config.validator.weights_interval == 0:
            await set_weights(rt, weights)
        digest = self.files.save_state(self.state)
        report = self.report(window, verdicts, evaluations, weights, loss_before, loss_after)
        self.files.append_journal(report, digest)
        log.info(
            "%s\n%s", f"window {window}: {len(used)} contributions aggregated", window_table(report)
        )
        try:  # lead artifacts and the report are best effort; the window's work is done
            await publish_lead_artifacts(rt, window, used, self.state.peers, passed)
            body = report.model_dump_json().encode()
            with METRICS.upload("report", len(body)):
                await rt.store.put(window_report_key(window, rt.hotkey), body)
            await rt.prune(window)
        except (StorageError, ChainError) as exc:
            log.warning("window %d: could not publish (%s): %s", window, exc.reason, exc)
            METRICS.error(f"publish_{exc.reason}")
        return report

    def report(
        self,
        window: int,
        verdicts: dict[int, Verdict],
        evaluations: dict[int, Evaluation],
        weights: dict[int, float],
        loss_before: float,
        loss_after: float,
    ) -> WindowReport:
        cfg = self.scoring
        peers = []
        for uid, v in sorted(verdicts.items()):
            state, ev = self.state.peers.get(uid), evaluations.get(uid)
            peers.append(
                PeerResult(
                    uid=uid,
                    hotkey=v.hotkey,
                    status=v.outcome,
                    reason=v.reason[:256],
                    evaluated=ev is not None,
                    loss_before=ev.own_before if ev else None,
                    loss_after=ev.own_after if ev else None,
                    own_improvement=ev.own_improvement(
                        nonfinite_penalty=cfg.nonfinite_loss_penalty,
                        relative=cfg.relative_improvement,
                    )
                    if ev
                    else None,
                    random_improvement=ev.random_improvement(
                        nonfinite_penalty=cfg.nonfinite_loss_penalty,
                        relative=cfg.relative_improvement,
                    )
                    if ev
                    else None,
                    sync=state.sync if state else None,
                    uniqueness=state.uniqueness if state else None,
                    rating=state.rating.ordinal(cfg.ordinal_z) if state else None,
                    score=state.score if state else 0.0,
                    weight=weights.get(uid, 0.0),
                )
            )
        return WindowReport(
            window=window,
            hotkey=self.rt.hotkey,
            validation_loss_before=loss_before,
            validation_loss_after=loss_after,
            peers=peers,
        )


async def set_weights(rt: Runtime, weights: dict[int, float]) -> bool:
    uids = sorted(uid for uid, w in weights.items() if w > 0)
    if not uids:
        log.info("no positive scores yet; not setting weights")
        METRICS.weights_set.labels("skipped").inc()
        return False
    try:
        await rt.chain.set_weights(uids, [weights[uid] for uid in uids])
    except ChainError as exc:  # rate limit, outage: keep working, try next interval
        log.warning("set_weights failed (%s): %s", exc.reason, exc)
        METRICS.weights_set.labels("failure").inc()
        METRICS.error(f"set_weights_{exc.reason}")
        return False
    METRICS.weights_set.labels("success").inc()
    return True


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
    rt = await open_runtime(config)
    files = ValidatorFiles(Path(config.node.state_dir).expanduser(), rt.hotkey)
    files.state.parent.mkdir(parents=True, exist_ok=True)
    validator = Validator(
        rt, files, files.load_secret(config.validator.eval_secret), files.load_state()
    )
    log.info(
        "validator uid %d hotkey %s on netuid %d (state: last window %d)",
        rt.uid, rt.hotkey, config.chain.netuid, validator.state.last_window,
    )  # fmt: skip
    board = StatusBoard(config.telemetry.status_history)
    board.load_journal(files.journal)
    try:
        await rt.serve_telemetry("validator", status_routes(board))
        start = await retry_transient(first_window, rt, validator.state)
        await retry_transient(rt.catch_up, start)
        done = 0
        while not config.node.max_windows or done < config.node.max_windows:
            METRICS.window.set(rt.window)
            report = await retry_transient(validator.process, rt.window)
            board.add(report)
            METRICS.observe_report(report)
            done += 1
    finally:
        await rt.close()
