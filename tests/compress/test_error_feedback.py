"""Error feedback: over many windows the sum of what was sent tracks the sum of Δ."""

from __future__ import annotations

import pytest
import torch

from gauntlet.compress import SparseCodec, TopKCodec
from protocol.schemas import SparseCodecParams, TopKCodecParams

SHAPES = {"w": (64, 48), "b": (40,)}
CODEC = TopKCodec(TopKCodecParams(chunk=8, topk=2, dct=True, quant="u8"))  # keeps 1/32 of a matrix


def _cumulative_errors(windows: int, feedback: bool) -> list[float]:
    """Relative error ||Σ sent − Σ Δ|| / ||Σ Δ|| after each window."""
    g = torch.Generator().manual_seed(0)
    drift = {n: torch.randn(s, generator=g) for n, s in SHAPES.items()}  # a consistent direction
    true = {n: torch.zeros(s) for n, s in SHAPES.items()}
    sent = {n: torch.zeros(s) for n, s in SHAPES.items()}
    error: dict[str, torch.Tensor] | None = None
    errors = []
    for _ in range(windows):
        delta = {n: drift[n] + torch.randn(s, generator=g) for n, s in SHAPES.items()}
        payload, residual = CODEC.encode(delta, error if feedback else None)
        error = residual
        decoded = CODEC.decode(payload, SHAPES)
        for n in SHAPES:
            true[n] += delta[n]
            sent[n] += decoded[n]
        num = sum(float((sent[n] - true[n]).norm() ** 2) for n in SHAPES)
        errors.append((num / sum(float(true[n].norm() ** 2) for n in SHAPES)) ** 0.5)
    return errors


def test_residual_is_exactly_what_was_not_sent() -> None:
    g = torch.Generator().manual_seed(1)
    delta = {n: torch.randn(s, generator=g) for n, s in SHAPES.items()}
    error = {n: torch.randn(s, generator=g) for n, s in SHAPES.items()}
    payload, residual = CODEC.encode(delta, error)
    decoded = CODEC.decode(payload, SHAPES)
    for n in SHAPES:
        torch.testing.assert_close(residual[n], delta[n] + error[n] - decoded[n])


def test_error_decay_scales_the_carried_residual() -> None:
    delta = {"b": torch.zeros(40)}
    error = {"b": torch.ones(40)}
    decayed = TopKCodec(TopKCodecParams(chunk=8, topk=8, dct=False, quant="f32"), error_decay=0.5)
    payload, residual = decayed.encode(delta, error)
    torch.testing.assert_close(decayed.decode(payload, {"b": (40,)})["b"], torch.full((40,), 0.5))
    assert float(residual["b"].abs().max()) == 0.0


def test_with_feedback_the_cumulative_error_shrinks() -> None:
    errors = _cumulative_errors(200, feedback=True)
    assert errors[-1] < errors[9] / 4
    assert errors[-1] < 0.1


def test_without_feedback_the_cumulative_error_does_not_shrink() -> None:
    errors = _cumulative_errors(200, feedback=False)
    assert errors[-1] > 0.5 and errors[-1] > errors[9] * 0.8


@pytest.mark.parametrize(
    "codec",
    [
        TopKCodec(TopKCodecParams(chunk=8, topk=2, dct=True, quant="u8"), error_decay=0.9),
        TopKCodec(TopKCodecParams(chunk=8, topk=2, dct=False, quant="f16")),
        SparseCodec(SparseCodecParams(chunk=64, topk=5, bits=2)),
    ],
    ids=["topk-dct", "topk-raw", "sparse"],
)
@pytest.mark.parametrize("with_error", [True, False])
def test_a_given_up_delta_holds_the_residual_and_nothing_else_changes(
    codec: TopKCodec | SparseCodec, with_error: bool
) -> None:
    """reuse_delta (the miner's path): the same payload bytes and residual bits as a fresh
    encode, the residual lives in Δ's own memory, and the carried residual is untouched
    (a miner that stores nothing keeps it)."""
    g = torch.Generator().manual_seed(3)
    delta = {n: torch.randn(s, generator=g) for n, s in SHAPES.items()}
    delta["half"] = torch.randn(24, 16, generator=g).half()  # not float32: copied, not reused
    error = {n: torch.randn(tuple(t.shape), generator=g) for n, t in delta.items()}
    kept_error = {n: t.clone() for n, t in error.items()}
    carried = error if with_error else None
    fresh_payload, fresh_residual = codec.encode(delta, carried)
    given = {n: t.clone() for n, t in delta.items()}
    pointers = {n: t.data_ptr() for n, t in given.items()}
    payload, residual = codec.encode(given, carried, reuse_delta=True)
    assert payload.keys() == fresh_payload.keys()
    for key, array in payload.items():
        assert array.tobytes() == fresh_payload[key].tobytes(), key
    for n in delta:
        assert torch.equal(residual[n], fresh_residual[n]), n
        assert torch.equal(error[n], kept_error[n]), n
    assert all(residual[n].data_ptr() == pointers[n] for n in SHAPES)
    assert residual["half"].data_ptr() != pointers["half"]
    assert torch.equal(given["half"], delta["half"])  # a converted tensor is never written


def test_a_given_up_delta_whose_names_share_memory_is_encoded_as_if_copied() -> None:
    """Two names viewing one storage (tied weights): the first name's residual must not
    overwrite the second's input, so the second is encoded from a copy."""
    g = torch.Generator().manual_seed(4)
    shared = torch.randn(64, 48, generator=g)
    aliased = {"w": shared, "w_tied": shared}
    fresh_payload, fresh_residual = CODEC.encode({n: t.clone() for n, t in aliased.items()})
    payload, residual = CODEC.encode(aliased, reuse_delta=True)
    for key, array in payload.items():
        assert array.tobytes() == fresh_payload[key].tobytes(), key
    for n in aliased:
        assert torch.equal(residual[n], fresh_residual[n]), n
