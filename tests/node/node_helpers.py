"""Test doubles at the node's documented seams: a scripted chain (the ``Chain`` interface)
and a store wrapper that fails on cue (the ``ObjectStore`` interface); real signed payloads."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from gauntlet.chain.base import Chain, Hyperparameters, Metagraph, Neuron
from gauntlet.compress import dense
from gauntlet.config import GauntletConfig
from gauntlet.node.peers import Peer
from gauntlet.storage.base import ObjectInfo, ObjectStore, StoreUnavailable
from gauntlet.storage.filesystem import FilesystemStore
from protocol.commitment import FilesystemCommitment, encode_commitment
from protocol.container import Limits, encode_payload
from protocol.keys import contribution_key
from protocol.schemas import ContributionManifest
from protocol.sealed import seal_payload
from protocol.signing import keypair_from_uri

NETUID = 1


class ScriptedChain(Chain):
    """A chain whose head moves only when the test says so (``chain.block = n``)."""

    def __init__(self, neurons: Sequence[Neuron] = (), block: int = 0, block_time: float = 1.0):
        self.netuid = NETUID
        self.block = block
        self.seconds_per_block = block_time
        self.genesis = 1_700_000_000.0
        self.neurons = tuple(neurons)
        self.committed: dict[str, str] = {}

    async def current_block(self) -> int:
        return self.block

    async def block_time(self) -> float:
        return self.seconds_per_block

    async def block_timestamp(self, block: int) -> float:
        return self.genesis + block * self.seconds_per_block

    async def metagraph(self) -> Metagraph:
        return Metagraph(NETUID, self.block, self.neurons)

    async def hyperparameters(self) -> Hyperparameters:
        return Hyperparameters(360, 0, 256, 0, 64, 1024)

    async def register(self) -> int:
        raise NotImplementedError

    async def commit(self, data: str) -> None:
        raise NotImplementedError

    async def commitments(self) -> dict[str, str]:
        return dict(self.committed)

    async def set_weights(self, uids: Sequence[int], weights: Sequence[float]) -> None:
        return None


class FlakyStore(ObjectStore):
    """Wraps a store; while ``down`` every call raises :class:`StoreUnavailable`, and the
    next ``failing_gets`` reads and ``failing_puts`` writes fail the same way (an outage,
    a dropped connection). The reads named in ``stall`` (``"head"``, ``"get"``) never
    answer, as a tarpit server holds a request open (they end only when cancelled)."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.down = False
        self.failing_gets = 0
        self.failing_puts = 0
        self.stall: set[str] = set()
        self.stalled = 0  # reads held open so far

    async def _hold(self, read: str) -> None:
        if read in self.stall:
            self.stalled += 1
            await asyncio.Event().wait()

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailable("connection refused")

    async def put(self, key: str, data: bytes) -> ObjectInfo:
        self._check()
        if self.failing_puts:
            self.failing_puts -= 1
            raise StoreUnavailable("503 Service Unavailable")
        return await self.inner.put(key, data)

    async def put_if_absent(self, key: str, data: bytes) -> ObjectInfo:
        self._check()
        return await self.inner.put_if_absent(key, data)

    async def get(self, key: str, *, max_bytes: int, if_match: str | None = None) -> bytes:
        self._check()
        await self._hold("get")
        if self.failing_gets:
            self.failing_gets -= 1
            raise StoreUnavailable("read timed out")
        return await self.inner.get(key, max_bytes=max_bytes, if_match=if_match)

    async def get_range(self, key: str, start: int, length: int) -> bytes:
        self._check()
        return await self.inner.get_range(key, start, length)

    async def head(self, key: str) -> ObjectInfo:
        self._check()
        await self._hold("head")
        return await self.inner.head(key)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        self._check()
        async for info in self.inner.list(prefix):
            yield info

    async def delete(self, key: str) -> None:
        self._check()
        await self.inner.delete(key)


@dataclass
class Miner:
    """A registered miner with its own filesystem bucket (wrapped so it can fail on cue)."""

    uid: int
    uri: str
    store: FlakyStore
    commitment: str
    keys: dict[int, bytes] = field(default_factory=dict)  # window -> sealing key
    payloads: dict[int, bytes] = field(default_factory=dict)  # window -> signed payload

    @property
    def keypair(self):
        return keypair_from_uri(self.uri)

    @property
    def hotkey(self) -> str:
        return self.keypair.ss58_address

    @property
    def peer(self) -> Peer:
        return Peer(self.uid, self.hotkey, self.store)

    def neuron(self, stake: float = 0.0, validator: bool = False) -> Neuron:
        return Neuron(self.uid, self.hotkey, "cold", stake, validator, 0)


def make_miner(root: Path, uid: int, name: str = "miner") -> Miner:
    uri = f"//{name}/{uid}"
    bucket = f"{name}{uid}"
    store = FlakyStore(FilesystemStore(root, bucket))
    commitment = encode_commitment(FilesystemCommitment(bucket=bucket, root=str(root.resolve())))
    return Miner(uid, uri, store, commitment)


def payload(
    model: torch.nn.Module,
    miner: Miner,
    window: int,
    *,
    scale: float | None = None,
    pages: Sequence[int] = (1, 2),
    fingerprint: Sequence[float] = (0.0,),
) -> bytes:
    """A real signed dense payload: every parameter's Δ is a constant (``0.001 (uid + 1)``)."""
    value = 0.001 * (miner.uid + 1) if scale is None else scale
    delta = {name: torch.full_like(p, value) for name, p in model.named_parameters()}
    manifest = ContributionManifest(
        netuid=NETUID, window=window, uid=miner.uid, hotkey=miner.hotkey, model="tiny",
        fingerprint=list(fingerprint), page_ids=list(pages), tensors_sha256="0" * 64,
    )  # fmt: skip
    return encode_payload(dense.encode(delta), manifest, miner.keypair)


async def upload_sealed(miner: Miner, window: int, data: bytes) -> bytes:
    """Seal and store ``data`` as the miner's contribution for ``window``; the sealed bytes."""
    sealed, key = seal_payload(
        data, netuid=NETUID, window=window, uid=miner.uid, signer=miner.keypair
    )
    miner.keys[window] = key
    await miner.store.inner.put(contribution_key(window, miner.hotkey), sealed)
    return sealed


def dense_config(tmp: Path, dataset_dir: Path, **sections: dict) -> GauntletConfig:
    """A node config on the tiny model with the dense codec (payloads here are dense)."""
    data: dict = {
        "chain": {"network": "sim", "netuid": NETUID, "blocks_per_window": 10},
        "compress": {"codec": "dense"},
        "data": {"dataset_dir": str(dataset_dir)},
        "storage": {"root": str(tmp.resolve())},
        "node": {"state_dir": str(tmp / "state")},
    }
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    return GauntletConfig.model_validate(data)


LIMITS = Limits(max_bytes=4 * 2**20)


def node_runtime(tmp: Path, dataset: Path, uri: str, chain: Chain, peers: object, window: int):
    """A real :class:`Runtime` (tiny model, dense codec, a flaky filesystem bucket of its
    own) on ``chain``, reading peers' buckets through ``peers``, holding θ_window."""
    from gauntlet.node.runtime import Runtime, load_data_and_model

    config = dense_config(tmp, dataset, train={"start_window": window})
    store = FlakyStore(FilesystemStore(tmp, uri.strip("/").replace("/", "-")))
    data, model = load_data_and_model(config, torch.device("cpu"))
    return Runtime(
        config=config, keypair=keypair_from_uri(uri), chain=chain, store=store, dataset=data,
        model=model, uid=0, device=torch.device("cpu"), window=window, peers=peers,  # type: ignore[arg-type]
    )  # fmt: skip


class MinerStores:
    """The peer directory seam: each miner's (flaky) store by hotkey."""

    def __init__(self, miners: list[Miner]) -> None:
        self.by_hotkey = {m.hotkey: m.store for m in miners}

    def store_for(self, hotkey: str, raw: str | None) -> FlakyStore | None:
        return self.by_hotkey.get(hotkey)

    async def close(self) -> None:
        return None


def revealed_window(
    tmp: Path, dataset: Path, window: int, scale: Callable[[Miner], float | None] = lambda m: None
):
    """Two miners that uploaded and revealed ``window`` (each Δ a constant, ``scale(miner)``
    or :func:`payload`'s default), a lead and a second validator holding θ_window, on a
    chain at block 44 whose later blocks are in the future (records are on time)."""
    from gauntlet.node.reveals import publish_reveal

    chain = ScriptedChain(block=44)
    chain.genesis = time.time()
    miners = [make_miner(tmp, uid) for uid in (1, 2)]
    lead = node_runtime(tmp, dataset, "//lead", chain, MinerStores(miners), window)
    follower = node_runtime(tmp, dataset, "//follower", chain, MinerStores(miners), window)

    async def setup() -> None:
        for m in miners:
            m.payloads[window] = payload(lead.model, m, window, scale=scale(m))
            await upload_sealed(m, window, m.payloads[window])
            await publish_reveal(
                m.store.inner, netuid=NETUID, window=window, key=m.keys[window], signer=m.keypair
            )

    asyncio.run(setup())
    return chain, miners, lead, follower


class LiveCount:
    """Counts decoded updates still alive (each dropped update's tensors are freed)."""

    def __init__(self) -> None:
        self.alive = 0
        self.most = 0
        self.made = 0

    def track(self, delta: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        self.alive += 1
        self.made += 1
        self.most = max(self.most, self.alive)
        weakref.finalize(next(iter(delta.values())), self._freed)
        return delta

    def _freed(self) -> None:
        self.alive -= 1
