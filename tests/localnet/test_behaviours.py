"""Miner behaviours of the local subnet: the registry and each adversary's deviation.

Hooks that never read the runtime are called with ``rt=None``; the two that read one
attribute or two of it get a tiny namespace with just those.
"""

from __future__ import annotations

import asyncio
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from gauntlet.localnet.behaviours import (
    BEHAVIOURS,
    Desync,
    Malformed,
    Noise,
    Offline,
    Replay,
    Scaled,
    WrongData,
    far_pages,
    make_behaviour,
)
from gauntlet.node.behaviour import Honest
from protocol.assignment import assign_pages
from protocol.container import Limits, decode_payload, encode_payload
from protocol.errors import HashMismatch, MalformedPayload, ProtocolError
from protocol.schemas import ContributionManifest
from protocol.signing import keypair_from_uri

NETUID, WINDOW = 1, 9
LIMITS = Limits(max_bytes=1 << 20)
KEY = keypair_from_uri("//miner/0")


def payload(values: int, window: int = WINDOW) -> bytes:
    """A valid signed payload whose data section holds ``values`` float32 values."""
    manifest = ContributionManifest(
        netuid=NETUID, window=window, uid=0, hotkey=KEY.ss58_address, model="tiny",
        fingerprint=[0.5], page_ids=[1, 2], tensors_sha256="0" * 64,
    )  # fmt: skip
    tensors = {"vals": np.linspace(-1.0, 1.0, values, dtype=np.float32)}
    return encode_payload(tensors, manifest, KEY)


def decode(data: bytes, window: int = WINDOW) -> object:
    return decode_payload(
        data,
        limits=LIMITS,
        expected_hotkey=KEY.ss58_address,
        expected_window=window,
        expected_netuid=NETUID,
    )


def test_the_registry_holds_the_honest_miner_and_every_adversary() -> None:
    assert set(BEHAVIOURS) == {
        "honest", "copycat", "crowd-mix", "replay", "freerider", "wrongdata", "noise", "scaled",
        "late", "desync", "offline", "malformed",
        "sybil", "shrink", "lazy", "part-timer", "mix-previous", "sign-flip", "weak-control",
        "wrongdata-part", "spoil-control", "boost", "sleeper-boost", "coast", "tarpit",
        "selective-serve", "gate-rider", "thin", "page-fit", "skim",
    }  # fmt: skip
    for name, cls in BEHAVIOURS.items():
        assert cls.name == name
        assert issubclass(cls, Honest)


def test_an_unknown_behaviour_is_a_value_error_listing_the_known_ones() -> None:
    with pytest.raises(
        ValueError,
        match=r"unknown behaviour 'sneaky'; known: boost, coast, copycat, crowd-mix, desync, freerider, gate-rider, honest, late",
    ):
        make_behaviour("sneaky")


@pytest.mark.parametrize(
    ("name", "args"),
    [("scaled", {"facter": 2.0}), ("copycat", {}), ("offline", {"online_windows": 1, "x": 0})],
)
def test_bad_arguments_are_a_value_error_naming_the_behaviour(name: str, args: dict) -> None:
    with pytest.raises(ValueError, match=f"behaviour '{name}': bad arguments"):
        make_behaviour(name, args)


TARGETED = {"copycat", "spoil-control"}  # need a target node: no defaults


@pytest.mark.parametrize("name", sorted(set(BEHAVIOURS) - TARGETED))
def test_every_behaviour_but_the_targeted_ones_builds_with_its_defaults(name: str) -> None:
    built = make_behaviour(name)
    assert type(built) is BEHAVIOURS[name]
    assert make_behaviour(name, None).name == name


@pytest.mark.parametrize("name", sorted(TARGETED))
def test_a_targeted_behaviour_builds_with_a_target(name: str) -> None:
    built = make_behaviour(name, {"target": "5Gtarget"})
    assert built.target == "5Gtarget"  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match=f"behaviour '{name}': bad arguments"):
        make_behaviour(name)


def test_arguments_reach_the_constructor() -> None:
    assert make_behaviour("scaled", {"factor": 3.5}).factor == 3.5  # type: ignore[attr-defined]
    assert make_behaviour("replay", {"lag": 4}).lag == 4  # type: ignore[attr-defined]


def test_the_honest_hooks_change_nothing() -> None:
    honest, data = Honest(), payload(8)
    tensors = {"vals": np.ones(3, dtype=np.float32)}
    assert honest.online(WINDOW)
    assert honest.training_pages(None, WINDOW, [4, 5]) == [4, 5]  # type: ignore[arg-type]
    assert honest.finish(WINDOW, data) is data
    assert asyncio.run(honest.wire_tensors(None, WINDOW, tensors)) is tensors  # type: ignore[arg-type]


@pytest.mark.parametrize("values", [4, 1024], ids=["middle-in-header", "middle-in-data"])
@pytest.mark.parametrize("mode", ["flip", "truncate", "garbage"])
def test_a_malformed_payload_is_rejected_while_the_untouched_one_decodes(
    mode: str, values: int
) -> None:
    data = payload(values)
    assert decode(data).manifest.uid == 0  # type: ignore[attr-defined]
    broken = Malformed(mode).finish(WINDOW, data)
    assert broken != data
    with pytest.raises(ProtocolError):
        decode(broken)


def test_flip_changes_exactly_the_middle_byte() -> None:
    data = payload(1024)
    broken = Malformed("flip").finish(WINDOW, data)
    middle = len(data) // 2
    assert len(broken) == len(data)
    assert [i for i in range(len(data)) if broken[i] != data[i]] == [middle]
    assert broken[middle] == data[middle] ^ 0xFF
    with pytest.raises(HashMismatch):  # the middle of a large payload is tensor data
        decode(broken)


def test_truncate_keeps_the_first_third() -> None:
    data = payload(1024)
    broken = Malformed("truncate").finish(WINDOW, data)
    assert broken == data[: len(data) // 3]
    with pytest.raises(HashMismatch):  # a third of a large payload still holds the header
        decode(broken)
    small = payload(4)  # a third of a small one cuts into the header
    with pytest.raises(MalformedPayload, match="header runs past the end"):
        decode(Malformed("truncate").finish(WINDOW, small))


def test_garbage_has_the_payload_length_and_depends_on_the_window_only() -> None:
    data = payload(64)
    garbage = Malformed("garbage")
    assert len(garbage.finish(WINDOW, data)) == len(data)
    assert garbage.finish(WINDOW, data) == garbage.finish(WINDOW, payload(64, window=WINDOW))
    assert garbage.finish(WINDOW, data) != garbage.finish(WINDOW + 1, data)


def test_cycle_mode_goes_flip_truncate_garbage_by_window() -> None:
    cycle = Malformed()
    for window, mode in [(30, "flip"), (31, "truncate"), (32, "garbage"), (33, "flip")]:
        data = payload(256, window=window)
        assert cycle.finish(window, data) == Malformed(mode).finish(window, data)
        with pytest.raises(ProtocolError):
            decode(cycle.finish(window, data), window=window)


def test_replay_uploads_what_it_sent_lag_windows_earlier() -> None:
    replay = Replay(lag=2)
    fresh = {w: {"vals": np.full(4, float(w), dtype=np.float32)} for w in range(10, 16)}

    def sent(window: int) -> dict[str, np.ndarray]:
        return asyncio.run(replay.wire_tensors(None, window, fresh[window]))  # type: ignore[arg-type]

    # Honest until it has something from two windows back, then the same old tensors again:
    # window 12 resends 10's, 13 resends 11's, 14 resends what 12 sent (10's), and so on.
    uploaded = [sent(w) for w in range(10, 16)]
    origin = [next(w for w, t in fresh.items() if t is up) for up in uploaded]
    assert origin == [10, 11, 10, 11, 10, 11]
    assert len(replay.sent) <= replay.lag + 1  # bounded memory


def test_replay_after_a_gap_is_honest_again() -> None:
    replay, tensors = Replay(lag=1), {"vals": np.zeros(2, dtype=np.float32)}
    other = {"vals": np.ones(2, dtype=np.float32)}
    asyncio.run(replay.wire_tensors(None, 5, tensors))  # type: ignore[arg-type]
    # Window 6 missed: nothing was sent one window before 7.
    assert asyncio.run(replay.wire_tensors(None, 7, other)) is other  # type: ignore[arg-type]


def test_offline_after_its_online_windows_never_returns_by_default() -> None:
    offline = Offline(online_windows=2)
    assert [offline.online(w) for w in range(20, 26)] == [True, True, False, False, False, False]


def test_offline_with_every_comes_back_every_nth_window_it_sees() -> None:
    offline = Offline(online_windows=2, every=3)
    # Windows seen 0..7 (from window 40): online 0, 1, then whenever seen % 3 == 0.
    got = [offline.online(w) for w in range(40, 48)]
    assert got == [True, True, False, True, False, False, True, False]


def test_offline_with_no_online_windows_is_never_online() -> None:
    offline = Offline(online_windows=0)
    assert not any(offline.online(w) for w in range(5))


def delta() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(123)
    return {"w": torch.randn(8, 16, generator=g), "b": torch.randn(16, generator=g) * 0.01}


def test_scaled_multiplies_every_tensor_by_its_factor() -> None:
    given = delta()
    kept = {name: t.clone() for name, t in given.items()}
    out = asyncio.run(Scaled(factor=20.0).update(None, WINDOW, given))  # type: ignore[arg-type]
    assert set(out) == set(given)
    for name, t in given.items():
        assert torch.equal(out[name], t * 20.0)
        assert torch.equal(t, kept[name])  # the input is not modified


def test_noise_keeps_each_tensor_norm_shape_and_dtype_but_not_its_direction() -> None:
    given = delta()
    out = asyncio.run(Noise(seed=1).update(None, WINDOW, given))  # type: ignore[arg-type]
    for name, t in given.items():
        assert out[name].shape == t.shape and out[name].dtype == t.dtype
        assert float(out[name].norm()) == pytest.approx(float(t.norm()), rel=1e-5)
        cos = float(torch.dot(out[name].reshape(-1), t.reshape(-1)) / (t.norm() ** 2))
        assert abs(cos) < 0.5  # unrelated to the real update


def test_noise_is_deterministic_per_seed_and_fresh_each_window() -> None:
    def first(noise: Noise, window: int) -> torch.Tensor:
        return asyncio.run(noise.update(None, window, delta()))["w"]  # type: ignore[arg-type]

    a, b, c = Noise(seed=1), Noise(seed=1), Noise(seed=2)
    assert torch.equal(first(a, 0), first(b, 0))
    assert not torch.equal(first(a, 0), first(c, 0))
    # The same miner draws new noise every window (an identical upload would be a replay).
    assert not torch.equal(first(a, 1), first(b, 0))


def test_noise_of_a_zero_tensor_is_zero() -> None:
    zero = {"w": torch.zeros(3, 3)}
    out = asyncio.run(Noise().update(None, WINDOW, zero))  # type: ignore[arg-type]
    assert torch.equal(out["w"], zero["w"])


def test_desync_keeps_training_from_the_model_as_it_was_lag_windows_in() -> None:
    model = nn.Linear(2, 2)
    rt = SimpleNamespace(model=model)
    desync = Desync(lag=1)
    assert desync.training_model(rt, 7) is model  # type: ignore[arg-type]
    stale = desync.training_model(rt, 8)  # type: ignore[arg-type]
    assert isinstance(stale, nn.Linear) and stale is not model
    assert torch.equal(stale.weight, model.weight)
    with torch.no_grad():
        model.weight.add_(1.0)  # the network moves on
    later = desync.training_model(rt, 12)  # type: ignore[arg-type]
    assert later is stale
    assert not torch.equal(later.weight, model.weight)


def test_wrongdata_trains_on_other_pages_of_the_same_count() -> None:
    rt = SimpleNamespace(
        config=SimpleNamespace(chain=SimpleNamespace(netuid=NETUID)),
        uid=3,
        hotkey=KEY.ss58_address,
        dataset=SimpleNamespace(dataset_id="stdlib", num_train_pages=5000),
    )
    own = assign_pages(
        netuid=NETUID, uid=3, hotkey=KEY.ss58_address, window=WINDOW, dataset_id="stdlib",
        num_pages=5000, pages_per_window=4,
    )  # fmt: skip
    pages = WrongData().training_pages(rt, WINDOW, own)  # type: ignore[arg-type]
    assert len(pages) == len(own)
    assert not set(pages) & set(own)
    assert all(0 <= p < 5000 for p in pages)
    assert WrongData().training_pages(rt, WINDOW, own) == pages  # type: ignore[arg-type]
    # far from every own page: unrelated text, not the next page of the same file
    assert all(min(abs(p - o), 5000 - abs(p - o)) > 100 for p in pages for o in own)


def test_wrongdata_part_trains_its_own_pages_two_windows_in_three_and_far_pages_otherwise() -> None:
    rt = SimpleNamespace(dataset=SimpleNamespace(num_train_pages=5000))
    own = [7, 1200, 3001]
    part = make_behaviour("wrongdata-part")  # period 3, own 2
    trained = {w: part.training_pages(rt, w, own) for w in range(30, 36)}  # type: ignore[arg-type]
    assert [w for w, pages in trained.items() if pages == own] == [30, 31, 33, 34]
    assert trained[32] == trained[35] == far_pages(own, 5000)
    with pytest.raises(ValueError, match="0 <= own <= period"):
        make_behaviour("wrongdata-part", {"period": 2, "own": 3})


def test_far_pages_stay_distinct_and_out_of_the_own_ones_on_a_tiny_dataset() -> None:
    assert far_pages([0, 1, 2], 6) == [3, 4, 5]
    assert far_pages([0, 3], 6) == [4, 1]  # 3 and 0 are its own: the next free page instead
    assert far_pages([0, 1], 4) == [2, 3]
    with pytest.raises(ValueError, match="need 6 pages"):
        far_pages([0, 1, 2], 5)


def _clearance(page: int, own: list[int], num_pages: int) -> int:
    return min(min(abs(page - o), num_pages - abs(page - o)) for o in own)


def test_far_pages_keep_away_from_every_own_page_not_just_the_one_they_replace() -> None:
    """The CI run of 2026-12-05 whose wrong-data miner ended paid (docs/scoring.md): own
    pages 1, 118 and 198 of 244 gave 117, 2 and 82 by the old rule (half the dataset from
    each), two of them beside an own page, so a page of the same file."""
    own = [1, 118, 198]
    assert min(_clearance(p, own, 244) for p in far_pages(own, 244)) >= 24
    rng = random.Random(0)
    for count in range(1, 6):  # the localnet's miners declare 1 to 5 pages of 244
        for _ in range(200):
            own = rng.sample(range(244), count)
            pages = far_pages(own, 244)
            assert len(set(pages)) == count and not set(pages) & set(own)
            farthest = max(_clearance(p, own, 244) for p in range(244) if p not in own)
            assert min(_clearance(p, own, 244) for p in pages) >= farthest // 2, own
