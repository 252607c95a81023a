"""The validator's window loop: gather, evaluate each contribution alone, score, set weights.

For window ``w`` (evaluated once it has closed) the model holds θ_w. Each valid
contribution is applied alone and the loss on the miner's own pages measured
before and after; then the window's aggregate moves the model to θ_{w+1}.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gauntlet.chain.base import ChainError
from gauntlet.config.schema import GauntletConfig
from gauntlet.model import causal_lm_loss
from gauntlet.node.gather import Contribution
from gauntlet.node.lead import publish_lead_artifacts
from gauntlet.node.lifecycle import retry_transient
from gauntlet.node.runtime import Runtime, open_runtime
from gauntlet.score.basic import loss_improvement, moving_average, weights_from_scores
from gauntlet.storage.base import StorageError
from gauntlet.train.evaluate import mean_loss
from gauntlet.train.inner import snapshot
from gauntlet.train.outer import applied
from protocol.keys import window_report_key
from protocol.schemas import PeerResult, WindowReport
from protocol.windows import window_of

log = logging.getLogger(__name__)


@dataclass
class ValidatorState:
    """Survives restarts: score moving averages by uid, and the last window evaluated."""

    scores: dict[int, float]
    last_window: int = -1

    @classmethod
    def load(cls, path: Path) -> ValidatorState:
        if not path.is_file():
            return cls(scores={})
        data = json.loads(path.read_text())
        return cls(
            scores={int(k): float(v) for k, v in data["scores"].items()},
            last_window=data["last_window"],
        )

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "w") as fh:
            json.dump({"scores": self.scores, "last_window": self.last_window}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)


def _loss(rt: Runtime, pages: list[int], seed: int) -> float:
    cfg = rt.config
    batches = rt.dataset.batches(
        pages, seq_len=cfg.train.seq_len, batch_size=cfg.validator.eval_batch_size, seed=seed
    )
    return mean_loss(
        rt.model, batches, causal_lm_loss, max_batches=cfg.validator.eval_batches, device=rt.device
    )


def evaluate(rt: Runtime, window: int, contributions: list[Contribution]) -> list[PeerResult]:
    """Loss before/after applying each valid contribution alone, on that miner's own pages."""
    base = snapshot(rt.model)
    results = []
    for c in contributions:
        if not c.ok or c.delta is None or c.manifest is None:
            results.append(PeerResult(uid=c.uid, hotkey=c.hotkey, status=c.status))
            continue
        pages = c.manifest.page_ids
        before = _loss(rt, pages, seed=window)
        with applied(rt.model, c.delta, rt.config.train.outer_lr, base):
            after = _loss(rt, pages, seed=window)
        results.append(
            PeerResult(
                uid=c.uid,
                hotkey=c.hotkey,
                status="ok",
                loss_before=before,
                loss_after=after,
                score=loss_improvement(before, after),
            )
        )
    return results


async def set_weights(rt: Runtime, weights: dict[int, float]) -> bool:
    uids = sorted(uid for uid, w in weights.items() if w > 0)
    if not uids:
        log.info("no positive scores yet; not setting weights")
        return False
    try:
        await rt.chain.set_weights(uids, [weights[uid] for uid in uids])
    except ChainError as exc:  # rate limit, outage: keep working, try next interval
        log.warning("set_weights failed (%s): %s", exc.reason, exc)
        return False
    return True


async def validate_window(rt: Runtime, state: ValidatorState, window: int) -> WindowReport:
    contributions = await rt.gather_window(window)
    results = evaluate(rt, window, contributions)
    validation_pages = rt.dataset.validation_page_ids()[: rt.config.validator.validation_pages]
    loss_before = _loss(rt, validation_pages, seed=0)
    used = rt.apply_outer_step(window, contributions)
    loss_after = _loss(rt, validation_pages, seed=0)
    try:
        await publish_lead_artifacts(rt, window, used)
    except (StorageError, ChainError) as exc:  # peers fall back to gathering; next window retries
        log.warning("window %d: could not publish lead artifacts (%s): %s", window, exc.reason, exc)
    alpha = rt.config.validator.score_ema
    for result in results:  # missing/invalid contributions score 0 this window
        state.scores[result.uid] = moving_average(state.scores.get(result.uid), result.score, alpha)
    weights = weights_from_scores(state.scores)
    if window % rt.config.validator.weights_interval == 0:
        await set_weights(rt, weights)
    state.last_window = window
    report = WindowReport(
        window=window,
        hotkey=rt.hotkey,
        validation_loss_before=loss_before,
        validation_loss_after=loss_after,
        peers=[r.model_copy(update={"weight": weights.get(r.uid, 0.0)}) for r in results],
    )
    try:  # the report is for people and tools; losing one must not cost the window
        await rt.store.put(window_report_key(window, rt.hotkey), report.model_dump_json().encode())
        await rt.prune(window)
    except StorageError as exc:
        log.warning("window %d: could not publish the report (%s): %s", window, exc.reason, exc)
    log.info(
        "window %d: %d/%d contributions used, validation loss %.4f -> %.4f",
        window,
        len(used),
        len(contributions),
        loss_before,
        loss_after,
    )
    return report


async def run_validator(config: GauntletConfig) -> None:
    rt = await open_runtime(config)
    state_path = Path(config.node.state_dir).expanduser() / f"validator-{rt.hotkey}.json"
    state = ValidatorState.load(state_path)
    log.info("validator uid %d hotkey %s on netuid %d", rt.uid, rt.hotkey, config.chain.netuid)
    try:
        # Evaluate from the window in progress; earlier windows are only replayed.
        current = await retry_transient(rt.chain.current_block)
        await retry_transient(rt.catch_up, window_of(current, config.chain.blocks_per_window))
        done = 0
        while not config.node.max_windows or done < config.node.max_windows:
            await retry_transient(validate_window, rt, state, rt.window)
            state.save(state_path)
            done += 1
    finally:
        await rt.close()
