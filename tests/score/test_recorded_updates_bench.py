"""bench/recorded_updates.py measures a localnet run's uploads again at the model each was
made for; its run-level test is in tests/integration/test_adversarial_scenario.py (it reuses
that run). Here: the measurement variants it applies to an update."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from gauntlet.node.checks import delta_norm
from gauntlet.train.novelty import alignment

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
    "recorded_updates", ROOT / "bench" / "recorded_updates.py"
)
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
sys.modules["recorded_updates"] = bench
_spec.loader.exec_module(bench)


def _delta(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"a": torch.randn(6, 5, generator=g), "b": torch.randn(7, generator=g)}


def _cos(x: dict[str, torch.Tensor], y: dict[str, torch.Tensor]) -> float:
    return alignment(x, y)


def test_without_span_leaves_nothing_along_any_direction_and_the_rest_untouched() -> None:
    directions = [_delta(1), _delta(2), _delta(3)]
    update = _delta(4)
    out = bench.without_span({n: t.clone() for n, t in update.items()}, directions)
    for d in directions:
        assert abs(bench.inner(out, d)) < 1e-6 * delta_norm(update) * delta_norm(d)  # float32
    # what it took lies in the span: update - out is a combination of the directions
    taken = torch.cat([(update[n] - out[n]).reshape(-1) for n in update]).double()
    basis = torch.stack([torch.cat([d[n].reshape(-1) for n in d]).double() for d in directions], 1)
    coef = torch.linalg.lstsq(basis, taken).solution
    assert torch.allclose(basis @ coef, taken, atol=1e-6)
    # a repeated direction adds nothing, and an update across every direction stays as it is
    across = bench.without_span({n: t.clone() for n, t in update.items()}, directions)
    again = bench.without_span(
        {n: t.clone() for n, t in across.items()}, [*directions, directions[0]]
    )
    assert all(torch.allclose(again[n], across[n], atol=1e-6) for n in across)


def test_the_variants_lower_sum_or_leave_the_update_as_they_say() -> None:
    update, last, previous = _delta(5), _delta(6), _delta(7)
    # make the update lean on the last aggregate, so the limit lowers it
    update = {n: t + 3 * last[n] for n, t in update.items()}
    limits = {"limit": 0.3, "masked": 0.3}

    def make(name: str, prev: dict[str, torch.Tensor] | None = previous) -> dict | None:
        return bench.variant(name, update, last, limits, lambda: last, prev, [last], lambda: update)

    sent = make("sent")
    assert sent is not None and all(torch.equal(sent[n], update[n]) for n in update)
    assert sent["a"] is not update["a"]  # a copy: the caller's update is not changed
    limited = make("limit")
    assert limited is not None and _cos(limited, last) == pytest.approx(0.3, abs=1e-6)
    assert delta_norm(limited) == pytest.approx(delta_norm(update), rel=1e-6)
    novel = make("novel")
    assert novel is not None and abs(_cos(novel, last)) < 1e-6
    blended = make("blend2")
    assert blended is not None and torch.allclose(blended["b"], update["b"] + previous["b"])
    assert make("blend2", None) is None  # no earlier upload: nothing to blend
    with pytest.raises(ValueError, match="unknown variant"):
        make("momentum")


def test_thinning_keeps_each_chunks_largest_coefficients_and_then_the_limit_applies() -> None:
    from gauntlet.compress.codec import build_codec
    from gauntlet.compress.thin import thinned
    from protocol.schemas import DenseCodecParams, TopKCodecParams

    codec = build_codec(TopKCodecParams(chunk=4, topk=8, dct=False, quant="f32"))
    update = {"w": torch.randn(8, 8, generator=torch.Generator().manual_seed(3))}
    shapes = {"w": (8, 8)}
    thin = thinned(codec, update, shapes, 2)
    assert thin is not None
    for r in range(0, 8, 4):  # each 4 x 4 chunk keeps its 4 largest entries, exactly
        for c in range(0, 8, 4):
            block, kept = update["w"][r : r + 4, c : c + 4], thin["w"][r : r + 4, c : c + 4]
            largest = block.abs().flatten().topk(4).indices
            assert torch.equal(
                kept.flatten().nonzero().flatten().sort().values, largest.sort().values
            )
            assert torch.equal(kept.flatten()[largest], block.flatten()[largest])
    assert thinned(build_codec(DenseCodecParams()), update, shapes, 2) is None

    last = {"w": torch.randn(8, 8, generator=torch.Generator().manual_seed(4))}
    leaning = {"w": thin["w"] + 2 * last["w"]}
    limits = {"limit": 0.2, "masked": 0.2}
    out = bench.variant(
        "sparse2", update, last, limits, lambda: last, None, [last], lambda: update,
        lambda factor: leaning if factor == 2 else None,
    )  # fmt: skip
    assert out is not None and alignment(out, last) == pytest.approx(0.2, abs=1e-6)
    assert bench.variant(
        "sparse4", update, last, limits, lambda: last, None, [last], lambda: update,
        lambda factor: None,
    ) is None  # fmt: skip


def test_a_pruned_run_is_rebuilt_from_the_first_checkpoint_after_what_is_gone(
    tmp_path: Path,
) -> None:
    from bench.recorded_run import rebuild_start

    for window in (10, 20, 30):
        folder = tmp_path / f"stores/b/gauntlet/v2/checkpoints/{window:010d}/lead"
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"")
    records = {w: [2, 3] for w in range(40)}
    every = {(w, uid): object() for w in range(40) for uid in (2, 3)}
    assert rebuild_start(tmp_path, records, every, 25) == 0  # nothing gone: from θ_0
    pruned = {key: c for key, c in every.items() if key[0] >= 12}
    # windows 0-11 are gone: window 12's aggregate is the first one the rebuild can form,
    # so it starts at the checkpoint of 20 (13 would do, but there is none before 20)
    assert rebuild_start(tmp_path, records, pruned, 25) == 20
    with pytest.raises(SystemExit, match="no longer hold window 11"):
        rebuild_start(tmp_path, records, pruned, 15)


def test_a_fresh_update_is_trained_at_the_model_and_sent_through_the_codec_once(
    stdlib_dataset_dir: Path,
) -> None:
    """``--fresh-pages``: an update trained at θ_w on random pages, as a first upload (the
    codec once, no error feedback), the model left as it was, the same for the same seed."""
    from gauntlet.compress.codec import build_codec, param_shapes
    from gauntlet.config.schema import GauntletConfig
    from gauntlet.data import PageDataset
    from gauntlet.model import build_model
    from gauntlet.train.inner import snapshot

    config = GauntletConfig.model_validate(
        {"train": {"seq_len": 64, "batch_size": 4}, "compress": {"chunk": 16, "topk": 16}}
    )
    model = build_model("tiny", 0)
    node = bench._Node(config, PageDataset(stdlib_dataset_dir), model, torch.device("cpu"))
    codec, shapes = build_codec(config.compress.codec_params()), param_shapes(model)
    start = snapshot(model)
    out = bench.fresh_updates(node, 3, [1, 2], codec, shapes, seed=0)
    assert set(out) == {"fresh1", "fresh2"}
    assert all(torch.equal(p, start[n]) for n, p in model.named_parameters())
    for update, share in out.values():
        assert share is not None and 0.25 < share <= 1.0
        assert delta_norm(update) > 0
        again = codec.decode(codec.encode(update)[0], shapes, "cpu")  # already what it keeps
        assert all(
            torch.allclose(again[n], t, atol=1e-2 * float(t.abs().max())) for n, t in update.items()
        )
    repeat = bench.fresh_updates(node, 3, [1], codec, shapes, seed=0)["fresh1"][0]
    assert all(torch.equal(repeat[n], t) for n, t in out["fresh1"][0].items())
