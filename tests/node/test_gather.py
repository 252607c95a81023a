"""Gathering a window's contributions from real filesystem buckets with real signed payloads."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
import torch

from gauntlet.compress import dense
from gauntlet.compress.codec import DenseCodec, build_codec, param_shapes
from gauntlet.model import build_model
from gauntlet.node.gather import gather
from gauntlet.node.peers import Peer
from gauntlet.storage.filesystem import FilesystemStore
from protocol.container import Limits, encode_payload
from protocol.keys import contribution_key
from protocol.schemas import CodecParams, ContributionManifest, TopKCodecParams
from protocol.signing import keypair_from_uri

WINDOW, NETUID = 12, 1


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return build_model("tiny", seed=0)


def _payload(
    model: torch.nn.Module,
    uri: str,
    uid: int,
    *,
    window: int = WINDOW,
    signer_uri: str | None = None,
) -> bytes:
    key, signer = keypair_from_uri(uri), keypair_from_uri(signer_uri or uri)
    delta = {name: torch.full_like(p, 0.001 * (uid + 1)) for name, p in model.named_parameters()}
    manifest = ContributionManifest(
        netuid=NETUID, window=window, uid=uid, hotkey=key.ss58_address, model="tiny",
        fingerprint=[0.0], page_ids=[1, 2], tensors_sha256="0" * 64,
    )  # fmt: skip
    if signer_uri:  # a forged payload: claims `uri`'s hotkey but is signed by someone else
        manifest = manifest.model_copy(update={"hotkey": signer.ss58_address})
        data = encode_payload(dense.encode(delta), manifest, signer)
        return data.replace(signer.ss58_address.encode(), key.ss58_address.encode())
    return encode_payload(dense.encode(delta), manifest, key)


def _gather(peers: list[Peer], model: torch.nn.Module, deadline: float) -> dict[int, object]:
    results = asyncio.run(
        gather(
            peers, netuid=NETUID, window=WINDOW, deadline_time=deadline, grace_seconds=1.0,
            limits=Limits(max_bytes=4 * 2**20), codec=DenseCodec(), shapes=param_shapes(model),
            device="cpu",
        )
    )  # fmt: skip
    return {r.uid: r for r in results}


def test_each_peer_gets_the_verdict_its_upload_deserves(
    tmp_path: Path, model: torch.nn.Module
) -> None:
    stores = {uid: FilesystemStore(tmp_path, f"bucket{uid}") for uid in range(7)}
    uris = {uid: f"//miner/{uid}" for uid in range(7)}
    hotkeys = {uid: keypair_from_uri(uri).ss58_address for uid, uri in uris.items()}

    def put(uid: int, data: bytes) -> str:
        key = contribution_key(WINDOW, hotkeys[uid])
        asyncio.run(stores[uid].put(key, data))
        return str(stores[uid].base / key)

    put(0, _payload(model, uris[0], 0))  # honest
    put(1, _payload(model, uris[1], 1))  # honest
    # uid 2 uploads nothing
    late = put(3, _payload(model, uris[3], 3))
    put(4, _payload(model, uris[4], 4, signer_uri="//intruder"))  # forged signature
    put(5, _payload(model, uris[5], 5, window=WINDOW - 1))  # a replay of another window
    put(6, _payload(model, uris[6], 99))  # manifest claims another uid

    deadline = os.stat(late).st_mtime - 30  # everything else is back-dated before it
    for uid in (0, 1, 4, 5, 6):
        path = stores[uid].base / contribution_key(WINDOW, hotkeys[uid])
        os.utime(path, (deadline - 5, deadline - 5))

    peers = [Peer(uid, hotkeys[uid], stores[uid]) for uid in range(7)] + [
        Peer(7, "5Fnostore", None)
    ]
    verdicts = _gather(peers, model, deadline)

    assert [uid for uid, v in verdicts.items() if v.ok] == [0, 1]  # type: ignore[attr-defined]
    statuses = {uid: v.status for uid, v in verdicts.items()}  # type: ignore[attr-defined]
    assert statuses == {
        0: "ok", 1: "ok", 2: "missing", 3: "late", 4: "invalid", 5: "invalid", 6: "invalid", 7: "unreadable",
    }  # fmt: skip
    assert "bad_signature" in verdicts[4].reason or "wrong_author" in verdicts[4].reason  # type: ignore[attr-defined]
    assert "wrong_window" in verdicts[5].reason  # type: ignore[attr-defined]
    torch.testing.assert_close(
        verdicts[1].delta["output.weight"], torch.full_like(model.output.weight, 0.002)
    )  # type: ignore[attr-defined]


def test_an_oversized_payload_is_refused_before_download(
    tmp_path: Path, model: torch.nn.Module
) -> None:
    store = FilesystemStore(tmp_path, "big")
    hotkey = keypair_from_uri("//big").ss58_address
    asyncio.run(store.put(contribution_key(WINDOW, hotkey), b"x" * (5 * 2**20)))
    verdict = _gather([Peer(0, hotkey, store)], model, deadline=1e12)[0]
    assert verdict.status == "unreadable" and "too_large" in verdict.reason  # type: ignore[attr-defined]


def test_a_payload_in_another_codec_is_invalid(tmp_path: Path, model: torch.nn.Module) -> None:
    """The network's codec is top-k; a dense payload, however well signed, is refused."""
    store = FilesystemStore(tmp_path, "b")
    hotkey = keypair_from_uri("//miner/0").ss58_address
    asyncio.run(store.put(contribution_key(WINDOW, hotkey), _payload(model, "//miner/0", 0)))
    shapes = param_shapes(model)
    verdict = asyncio.run(
        gather(
            [Peer(0, hotkey, store)], netuid=NETUID, window=WINDOW, deadline_time=1e12,
            grace_seconds=1.0, limits=Limits(max_bytes=4 * 2**20),
            codec=build_codec(TopKCodecParams()), shapes=shapes, device="cpu",
        )
    )[0]  # fmt: skip
    assert verdict.status == "invalid"


def test_a_topk_payload_decodes_to_a_full_size_update(
    tmp_path: Path, model: torch.nn.Module
) -> None:
    store, key = FilesystemStore(tmp_path, "b"), keypair_from_uri("//miner/1")
    codec, shapes = build_codec(TopKCodecParams(chunk=8, topk=4)), param_shapes(model)
    tensors, _ = codec.encode({n: torch.randn(s) for n, s in shapes.items()})
    manifest = ContributionManifest(
        netuid=NETUID, window=WINDOW, uid=1, hotkey=key.ss58_address, model="tiny",
        fingerprint=[0.0], page_ids=[1], codec=CodecParams(codec.params), tensors_sha256="0" * 64,
    )  # fmt: skip
    asyncio.run(
        store.put(
            contribution_key(WINDOW, key.ss58_address), encode_payload(tensors, manifest, key)
        )
    )
    verdict = asyncio.run(
        gather(
            [Peer(1, key.ss58_address, store)], netuid=NETUID, window=WINDOW, deadline_time=1e12,
            grace_seconds=1.0, limits=Limits(max_bytes=4 * 2**20), codec=codec, shapes=shapes, device="cpu",
        )
    )[0]  # fmt: skip
    assert verdict.ok and verdict.delta is not None
    assert {n: tuple(t.shape) for n, t in verdict.delta.items()} == shapes
