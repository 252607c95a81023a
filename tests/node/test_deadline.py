"""A miner trains its pages in order and stops when only its upload time is left, declaring
the pages it trained in full: a budget its host cannot finish in a window costs pages, not
the whole window (CI, 2026-12-03: a 5-page miner on a starved host uploaded in 5 of 12
windows, "training outlasted the window", and earned less than a 2-page one)."""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path

import pytest
import torch
from node_helpers import ScriptedChain, node_runtime

from gauntlet.node.deadline import UploadTime, seconds_to_end, training_seconds
from gauntlet.node.miner import WindowPlan, train_stoppably, train_window, training_stop
from gauntlet.train.distributed import DistContext
from gauntlet.train.inner import snapshot

WINDOW = 3  # blocks 30..39; the window ends at block 40
PAGES = [11, 12, 13, 14]


def test_the_upload_reserve_is_measured_with_margin_and_one_block_before_any_upload() -> None:
    assert training_seconds(4.5, UploadTime(), margin=2.0, block_time=1.0) == 3.5
    assert training_seconds(4.5, UploadTime(0.5), margin=2.0, block_time=1.0) == 3.5
    assert training_seconds(4.5, UploadTime(0.2), margin=2.0, block_time=12.0) == pytest.approx(4.1)
    assert training_seconds(0.3, UploadTime(0.5), margin=2.0, block_time=1.0) == 0.0


def test_the_upload_time_follows_slower_uploads_and_ignores_unusable_ones() -> None:
    upload = UploadTime().observed(1.0)
    assert upload == UploadTime(1.0)
    assert upload.observed(3.0) == UploadTime(2.0)  # halfway to the slower one
    for bad in (math.nan, math.inf, -1.0):
        assert upload.observed(bad) == upload


def test_training_stops_in_time_for_the_upload(tmp_path: Path, stdlib_dataset_dir: Path) -> None:
    rt = node_runtime(
        tmp_path, stdlib_dataset_dir, "//miner/1", ScriptedChain(block=35), None, WINDOW
    )
    before = time.monotonic()
    stop_at = asyncio.run(training_stop(rt, WINDOW, UploadTime(0.5)))
    # At block 35 of 30..39 (1 s blocks) 4 s are surely left (5 at most); 2 x 0.5 s kept.
    assert before + 3.0 <= stop_at <= time.monotonic() + 3.0


def test_the_time_left_is_the_end_blocks_due_time_kept_within_the_head_blocks_span() -> None:
    now = 1000.0
    # 5 blocks of 1 s to the end block: 4 s at least (the head block nearly over), 5 at most.
    assert seconds_to_end(5, 1.0, now + 4.6, now) == pytest.approx(4.6)
    assert seconds_to_end(5, 1.0, now + 9.0, now) == 5.0  # a clock behind the chain's
    assert seconds_to_end(5, 1.0, now + 1.0, now) == 4.0  # a clock ahead of it
    assert seconds_to_end(5, 1.0, None, now) == 4.0
    assert seconds_to_end(5, 1.0, math.nan, now) == 4.0
    assert seconds_to_end(0, 1.0, now - 3.0, now) == 0.0  # the window is over


def test_training_uses_the_part_of_the_head_block_that_is_left(
    tmp_path: Path, stdlib_dataset_dir: Path
) -> None:
    chain = ScriptedChain(block=35)
    rt = node_runtime(tmp_path, stdlib_dataset_dir, "//miner/1", chain, None, WINDOW)
    chain.genesis = time.time() - 0.2 - 35 * chain.seconds_per_block  # block 35 began 0.2 s ago
    before = time.monotonic()
    stop_at = asyncio.run(training_stop(rt, WINDOW, UploadTime(0.5)))
    # The end block (40) is due 5 - 0.2 s after the head's start: 4.8 s, less 2 x 0.5 s kept.
    assert before + 3.7 <= stop_at <= time.monotonic() + 3.8


def _after(steps: int):
    """An ``until`` that ends training after ``steps`` steps (it is asked before each)."""
    asked = iter(range(10**6))
    return lambda: next(asked) >= steps


def _train(rt, pages: list[int], until) -> tuple[int, int]:
    """(steps taken, pages trained in full) of one window with ``until``; θ_w must be kept."""
    theta = snapshot(rt.model)
    result, covered = train_window(
        rt.config.train, rt.dataset, rt.model, WindowPlan(WINDOW, pages, train=True),
        device=torch.device("cpu"), dist=DistContext(), until=until,
    )  # fmt: skip
    assert all(torch.equal(p, theta[n]) for n, p in rt.model.named_parameters())
    return len(result.losses), covered


def test_a_window_cut_short_declares_the_prefix_of_pages_it_trained_in_full(
    tmp_path: Path, stdlib_dataset_dir: Path
) -> None:
    rt = node_runtime(
        tmp_path, stdlib_dataset_dir, "//miner/1", ScriptedChain(block=35), None, WINDOW
    )
    cfg = rt.config.train
    ordered = rt.dataset.batches_in_page_order(
        PAGES, seq_len=cfg.seq_len, batch_size=cfg.batch_size, seed=WINDOW
    )
    total = len(ordered.batches)
    assert _train(rt, PAGES, None) == (total, len(PAGES))  # a whole pass: every page

    for stop_after in range(total):
        steps, covered = _train(rt, PAGES, _after(stop_after))
        assert steps == stop_after
        assert covered == (ordered.pages_done[steps - 1] if steps else 0)
        assert covered < len(PAGES)
    assert ordered.pages_done[total // 2] >= 1  # some cut declares pages, none declares all


def test_fixed_inner_steps_cut_short_declare_nothing(
    tmp_path: Path, stdlib_dataset_dir: Path
) -> None:
    rt = node_runtime(
        tmp_path, stdlib_dataset_dir, "//miner/1", ScriptedChain(block=35), None, WINDOW
    )
    rt.config.train.inner_steps = 6  # shuffled over every page: only all six steps cover them
    assert _train(rt, PAGES, _after(5)) == (5, 0)
    assert _train(rt, PAGES, None) == (6, len(PAGES))


def test_the_deadline_ends_training_in_its_thread(tmp_path: Path, stdlib_dataset_dir: Path) -> None:
    rt = node_runtime(
        tmp_path, stdlib_dataset_dir, "//miner/1", ScriptedChain(block=35), None, WINDOW
    )
    rt.config.train.inner_steps = 100_000  # far more than fits before the deadline
    plan = WindowPlan(WINDOW, PAGES, train=True)
    began = time.monotonic()
    result, covered = asyncio.run(
        train_stoppably(rt.config.train, rt, rt.model, plan, DistContext(), began + 1.0)
    )
    assert 0 < len(result.losses) < 100_000 and covered == 0
    assert time.monotonic() - began < 10.0  # within a step of the deadline, not 100k steps
