"""What both neurons need, built once from the config: identity, chain, store, data, model.

Also the window timeline both follow: contributions for window ``w`` are gathered
once the chain has passed the upload deadline of ``w`` plus the grace period.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from aiohttp import web
from torch import nn

from gauntlet.chain.base import Chain, ChainUnavailable
from gauntlet.chain.factory import build_chain
from gauntlet.compress.aggregate import Delta, aggregate
from gauntlet.compress.codec import build_codec, param_shapes
from gauntlet.config.schema import GauntletConfig
from gauntlet.data import PageDataset, ensure_dataset
from gauntlet.model import build_model, prepare_for_training
from gauntlet.node.gather import Contribution, gather
from gauntlet.node.identity import load_hotkey
from gauntlet.node.peer_sets import peer_set_for
from gauntlet.node.peers import PeerDirectory
from gauntlet.node.replay import find_lead, replay_window, restore_checkpoint
from gauntlet.storage.base import ObjectStore
from gauntlet.storage.factory import build_store
from gauntlet.storage.retention import delete_older_than
from gauntlet.telemetry import METRICS, TelemetryError, TelemetryServer
from gauntlet.train.outer import apply_delta
from protocol.commitment import FilesystemCommitment, S3Commitment, encode_commitment
from protocol.container import Limits
from protocol.keys import protocol_prefix
from protocol.schemas import PeerSet
from protocol.signing import Signer
from protocol.windows import window_end

log = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """A node cannot start; the message tells the operator what to fix."""


def default_bucket(hotkey: str) -> str:
    # S3 bucket names are lowercase, 3-63 chars: derive one from the hotkey.
    return "gauntlet-" + hashlib.sha256(hotkey.encode()).hexdigest()[:16]


def own_commitment(config: GauntletConfig, bucket: str) -> FilesystemCommitment | S3Commitment:
    storage = config.storage
    if storage.backend == "filesystem":
        return FilesystemCommitment(
            bucket=bucket, root=str(Path(storage.root).expanduser().resolve())
        )
    if not (storage.read_access_key_id and storage.read_secret_access_key):
        raise StartupError(
            "storage.backend=s3 needs read-only credentials to publish (storage.read_*)"
        )
    return S3Commitment(
        bucket=bucket,
        endpoint=storage.endpoint,
        region=storage.region,
        access_key=storage.read_access_key_id,
        secret_key=storage.read_secret_access_key,
    )


@dataclass
class Runtime:
    config: GauntletConfig
    keypair: Signer
    chain: Chain
    store: ObjectStore
    dataset: PageDataset
    model: nn.Module
    uid: int
    device: torch.device
    peers: PeerDirectory = field(default_factory=PeerDirectory)
    window: int = 0  # the model holds θ_window
    last_aggregate: Delta | None = None  # the update applied by the latest outer step
    peer_set_window: int = 0  # window of the peer set the latest outer step used (0: none)
    telemetry: TelemetryServer | None = None  # /metrics, when telemetry.metrics_port is set

    def __post_init__(self) -> None:
        self.shapes = param_shapes(self.model)
        self.codec = build_codec(
            self.config.compress.codec_params(), error_decay=self.config.compress.error_decay
        )

    @property
    def hotkey(self) -> str:
        return self.keypair.ss58_address

    @property
    def limits(self) -> Limits:
        return Limits(max_bytes=self.config.storage.max_payload_bytes)

    async def gather_block(self, window: int) -> int:
        """First block at which every on-time upload for ``window`` is visible."""
        grace_blocks = math.ceil(
            self.config.chain.upload_grace_seconds / await self.chain.block_time()
        )
        return window_end(window, self.config.chain.blocks_per_window) + grace_blocks

    async def gather_window(self, window: int) -> list[Contribution]:
        """Wait until ``window`` is closed, then fetch and verify every miner's contribution."""
        await self.chain.wait_for_block(await self.gather_block(window))
        _, miners = await self.peers.miners(self.chain)
        deadline = await self.chain.block_timestamp(
            window_end(window, self.config.chain.blocks_per_window)
        )
        return await gather(
            miners,
            netuid=self.config.chain.netuid,
            window=window,
            deadline_time=deadline,
            grace_seconds=self.config.chain.upload_grace_seconds,
            limits=self.limits,
            codec=self.codec,
            shapes=self.shapes,
            device=self.device,
        )

    async def outer_step(
        self, window: int, contributions: list[Contribution]
    ) -> list[Contribution]:
        """:meth:`apply_outer_step` restricted to the lead's peer set in force, if any."""
        lead = await find_lead(self)
        peer_set = (
            None if lead is None else await peer_set_for(self, lead.hotkey, lead.store, window)
        )
        self.peer_set_window = peer_set.window if peer_set is not None else 0
        return self.apply_outer_step(window, contributions, peer_set)

    def apply_outer_step(
        self, window: int, contributions: list[Contribution], peer_set: PeerSet | None = None
    ) -> list[Contribution]:
        """θ_{w+1} from θ_w and the window's valid contributions (uid order) of the peers in
        ``peer_set`` (all of them without one); returns those used."""
        if window != self.window:
            raise RuntimeError(f"model holds window {self.window}, cannot apply window {window}")
        members = None if peer_set is None else {(p.uid, p.hotkey) for p in peer_set.peers}
        used = sorted(
            (
                c
                for c in contributions
                if c.ok
                and c.delta is not None
                and (members is None or (c.uid, c.hotkey) in members)
            ),
            key=lambda c: c.uid,
        )
        self.last_aggregate = self.aggregate(used)
        if self.last_aggregate is not None:
            apply_delta(self.model, self.last_aggregate, self.config.train.outer_lr)
        self.window += 1
        return used

    def aggregate(self, used: list[Contribution]) -> Delta | None:
        """The window's update: each peer normalised or clipped as configured, then the mean."""
        deltas = [c.delta for c in used if c.delta is not None]
        if not deltas:
            return None
        cfg = self.config.compress
        names = list(self.shapes)
        return aggregate(
            lambda i, n: deltas[i][n], len(deltas), names, cfg.normalise, cfg.clip_norm
        )

    async def catch_up(self, target_window: int) -> None:
        """Bring the model to θ_target: live, gather the one window that just closed;
        behind by more, load the lead's newest checkpoint and replay its records."""
        if target_window - self.window > 1:
            lead = await find_lead(self)
            if lead is not None:  # stop one short: replaying the last window sets last_aggregate,
                # which validators need (sync magnitudes, page-bias reference, free-rider sketch)
                await restore_checkpoint(self, lead, target_window - 1)
            while self.window < target_window:
                await replay_window(self, lead)
        while self.window < target_window:
            used = await self.outer_step(self.window, await self.gather_window(self.window))
            log.info("synced window %d (%d contributions)", self.window - 1, len(used))

    async def prune(self, window: int) -> int:
        """Delete this node's own artifacts older than the retention horizon."""
        keep_from = window - self.config.storage.retention_windows
        if keep_from <= 0:
            return 0
        deleted = await delete_older_than(self.store, protocol_prefix(), keep_from)
        if deleted:
            log.info("retention: deleted %d artifacts older than window %d", deleted, keep_from)
        return deleted

    async def serve_telemetry(self, role: str, routes: Sequence[web.RouteDef] = ()) -> None:
        """Label this node's metrics and, if ``telemetry.metrics_port`` is set, serve them."""
        METRICS.set_node(role, self.uid, self.hotkey)
        cfg = self.config.telemetry
        if cfg.metrics_port:
            server = TelemetryServer(cfg.metrics_host, cfg.metrics_port, METRICS.registry, routes)
            try:
                self.telemetry = await server.start()
            except TelemetryError as exc:
                raise StartupError(str(exc)) from exc
            log.info("metrics at %s/metrics", server.url)

    async def close(self) -> None:
        if self.telemetry is not None:
            await self.telemetry.close()
        await self.peers.close()
        await self.store.close()
        await self.chain.close()


def resolve_device(config: GauntletConfig, local_rank: int = 0) -> torch.device:
    """The torch device for this process; a GPU that is asked for must exist."""
    device = torch.device(config.train.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise StartupError(
                f"--train.device {config.train.device} but no CUDA GPU is visible "
                "(check the driver, CUDA_VISIBLE_DEVICES, and that torch is the CUDA build: see README)"
            )
        if device.index is None:
            device = torch.device("cuda", local_rank)
    return device


def load_data_and_model(
    config: GauntletConfig, device: torch.device
) -> tuple[PageDataset, nn.Module]:
    """The dataset (prepared from local text if missing) and θ at the run's start window."""
    if config.train.torch_threads:
        torch.set_num_threads(config.train.torch_threads)
    dataset = ensure_dataset(
        Path(config.data.dataset_dir).expanduser(),
        page_tokens=config.data.page_tokens,
        max_tokens=config.data.max_tokens or None,
    )
    model = prepare_for_training(
        build_model(config.model.name, config.model.seed),
        device=device,
        compile=config.train.compile,
    )
    vocab = model.args.vocab_size
    if dataset.vocab_size > vocab:
        raise StartupError(
            f"the dataset's vocabulary ({dataset.vocab_size}) exceeds model {config.model.name}'s ({vocab})"
        )
    return dataset, model


def _own_store(config: GauntletConfig, bucket: str) -> ObjectStore:
    storage = config.storage
    if storage.backend == "s3" and not (
        storage.write_access_key_id and storage.write_secret_access_key
    ):
        raise StartupError(
            "storage.backend=s3 needs write credentials (--storage.write_access_key_id/...secret...)"
        )
    return build_store(
        backend=storage.backend,
        root=str(Path(storage.root).expanduser()),
        bucket=bucket,
        endpoint=storage.endpoint or None,
        region=storage.region,
        access_key_id=storage.write_access_key_id,
        secret_access_key=storage.write_secret_access_key,
        path_style=storage.path_style,
    )


async def open_runtime(config: GauntletConfig, device: torch.device | None = None) -> Runtime:
    """Load keys, connect, check registration, publish the bucket commitment, load data and model."""
    device = device or resolve_device(config)
    keypair = load_hotkey(config.wallet)
    chain = build_chain(config.chain, keypair)
    try:
        try:
            metagraph = await chain.metagraph()
        except ChainUnavailable as exc:
            raise StartupError(
                f"chain {config.chain.network} at {config.chain.endpoint} is unreachable: {exc}"
            ) from exc
        neuron = metagraph.by_hotkey(keypair.ss58_address)
        if neuron is None:
            raise StartupError(
                f"hotkey {keypair.ss58_address} is not registered on netuid {config.chain.netuid}: "
                "register it first (btcli subnets register, or the localnet does it for you)"
            )
        bucket = config.storage.bucket or default_bucket(keypair.ss58_address)
        store = _own_store(config, bucket)
        commitment = encode_commitment(own_commitment(config, bucket))
        if (await chain.commitments()).get(keypair.ss58_address) != commitment:
            await chain.commit(commitment)
    except BaseException:
        await chain.close()
        raise
    dataset, model = load_data_and_model(config, device)
    return Runtime(
        config=config,
        keypair=keypair,
        chain=chain,
        store=store,
        dataset=dataset,
        model=model,
        uid=neuron.uid,
        device=device,
        window=config.train.start_window,
    )
