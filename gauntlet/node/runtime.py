"""What both neurons need, built once from the config: identity, chain, store, data, model.

Also the window timeline both follow (:class:`protocol.windows.Timeline`) and the outer
step: every node moves from θ_w to θ_{w+1} by the lead's aggregation record
(:mod:`.records`), catching up from checkpoints when behind or diverged (:mod:`.replay`).
"""

from __future__ import annotations

import asyncio
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
from gauntlet.compress.aggregate import Delta
from gauntlet.compress.codec import build_codec, param_shapes
from gauntlet.config.schema import GauntletConfig
from gauntlet.data import DatasetError, PageDataset, ensure_dataset
from gauntlet.model import build_model, prepare_for_training
from gauntlet.node.bucket_move import move_bucket
from gauntlet.node.crash_points import crash_point
from gauntlet.node.gather import Contribution, Decoder
from gauntlet.node.identity import load_hotkey
from gauntlet.node.lease import UploaderLease, describe_commitment, instance_id
from gauntlet.node.lifecycle import outage_pause
from gauntlet.node.node_lock import lock_node
from gauntlet.node.peers import PeerDirectory, reader_policy
from gauntlet.node.records import follow_record
from gauntlet.node.replay import find_lead, restore_checkpoint
from gauntlet.node.store_check import StoreCheckError, check_own_store, check_reachable
from gauntlet.storage.base import ObjectStore
from gauntlet.storage.factory import build_store
from gauntlet.storage.retention import delete_older_than
from gauntlet.telemetry import METRICS, TelemetryError, TelemetryServer
from gauntlet.train.objective import training_plan
from gauntlet.train.outer import apply_delta
from protocol.commitment import FilesystemCommitment, S3Commitment, encode_commitment
from protocol.container import Limits
from protocol.keys import pruned_prefixes
from protocol.schemas import RecordLink
from protocol.signing import Signer
from protocol.windows import Timeline

log = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """A node cannot start; the message tells the operator what to fix."""

    headline = "cannot start"  # what the CLI's one line says before the message


class LeaseLost(StartupError):
    """Another node took this node's hotkey over while it ran (:mod:`.lease`): it stops."""

    headline = "stopping"


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
    if not storage.endpoint:
        raise StartupError(
            "storage.backend=s3 needs storage.endpoint, the https URL validators read the "
            "bucket at (AWS S3: https://s3.<region>.amazonaws.com)"
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
    diverged_since: int | None = None  # first window whose outer step missed the lead's record
    ledger_head: RecordLink | None = None  # the last record that counted (None: none yet)
    telemetry: TelemetryServer | None = None  # /metrics, when telemetry.metrics_port is set
    lease: UploaderLease | None = None  # this node's hold on its hotkey (None: not checked)
    _timeline: Timeline | None = None

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

    @property
    def decoder(self) -> Decoder:
        return Decoder(
            netuid=self.config.chain.netuid,
            limits=self.limits,
            codec=self.codec,
            shapes=self.shapes,
            device=self.device,
            plan_sha256=training_plan(self.config.train).sha256,
        )

    async def timeline(self) -> Timeline:
        """The window phases in blocks; the grace is the configured seconds in whole blocks."""
        if self._timeline is None:
            chain = self.config.chain
            grace = math.ceil(chain.upload_grace_seconds / await self.chain.block_time())
            self._timeline = Timeline(
                blocks_per_window=chain.blocks_per_window,
                grace_blocks=grace,
                reveal_blocks=chain.reveal_blocks,
                record_blocks=chain.record_blocks,
            )
        return self._timeline

    def apply_outer_step(self, window: int, used: list[Contribution]) -> None:
        """θ_{w+1} from θ_w and exactly ``used`` (aggregated in uid order)."""
        self.apply_aggregate(window, self.aggregate(used))

    def apply_aggregate(self, window: int, update: Delta | None) -> None:
        """θ_{w+1} = θ_w − outer_lr · ``update`` (None: no contribution, θ unchanged)."""
        if window != self.window:
            raise RuntimeError(f"model holds window {self.window}, cannot apply window {window}")
        self.last_aggregate = update
        if update is not None:
            apply_delta(self.model, update, self.config.train.outer_lr)
        self.window += 1

    def skip_window(self, window: int) -> None:
        """θ_{w+1} = θ_w: no record of ``window`` counts, so no node changes the model."""
        if window != self.window:
            raise RuntimeError(f"model holds window {self.window}, cannot skip window {window}")
        self.last_aggregate = None
        self.window += 1

    def mark_diverged(self, window: int) -> None:
        """Remember that the outer step of ``window`` did not reproduce the lead's model."""
        if self.diverged_since is None:
            self.diverged_since = window
        METRICS.model_diverged.set(1)

    def aggregate(self, used: list[Contribution]) -> Delta | None:
        """The window's update from ``used`` in uid order: each peer normalised or clipped as
        configured, then the mean, formed from the payloads in the codec's domain
        (:meth:`Codec.decode_batch`: no peer is decoded densely)."""
        ordered = sorted((c for c in used if c.ok and c.tensors is not None), key=lambda c: c.uid)
        payloads = [c.tensors for c in ordered if c.tensors is not None]
        if not payloads:
            return None
        cfg = self.config.compress
        return self.codec.decode_batch(
            payloads,
            self.shapes,
            normalise=cfg.normalise,
            clip_norm=cfg.clip_norm,
            device=self.device,
        )

    async def catch_up(self, target_window: int) -> None:
        """Bring the model to θ_target by the lead's records. Behind by more than one window,
        or diverged, first load the lead's newest checkpoint that helps."""
        lead = await find_lead(self)
        # stop one short: replaying the last window sets last_aggregate, which validators
        # need (sync magnitudes, page-bias reference, free-rider sketch)
        if (
            lead is not None
            and self.diverged_since is not None
            and await restore_checkpoint(self, lead, target_window - 1, after=self.diverged_since)
        ):
            log.warning("repaired the diverged model from the lead's checkpoint")
            self.diverged_since = None
            METRICS.model_diverged.set(0)
        if lead is not None and target_window - self.window > 1:
            await restore_checkpoint(self, lead, target_window - 1)
        while self.window < target_window:
            await follow_record(self, lead, self.window)
            crash_point("catch_up")

    async def prune(self, window: int) -> int:
        """Once per window, after the node's upload (miner) or report (validator): renew the
        uploader lease (:class:`LeaseLost` when another node took the hotkey over), then
        delete this node's own artifacts older than the retention horizon (every kind but
        the aggregation records: they are the contribution ledger, kept for good)."""
        if self.lease is not None:
            lost = await self.lease.renew(self.store, self.chain)
            if lost is not None:
                raise LeaseLost(lost)
        keep_from = window - self.config.storage.retention_windows
        if keep_from <= 0:
            return 0
        deleted = 0
        for prefix in pruned_prefixes():  # listed per kind: the kept records are never listed
            deleted += await delete_older_than(self.store, prefix, keep_from)
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
        if self.lease is not None:
            await self.lease.release(self.store)
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
    try:
        dataset = ensure_dataset(
            Path(config.data.dataset_dir).expanduser(),
            page_tokens=config.data.page_tokens,
            max_tokens=config.data.max_tokens or None,
        )
    except DatasetError as exc:
        raise StartupError(
            f"cannot use the dataset in {config.data.dataset_dir}: {exc} (move it aside to "
            "rebuild the default one, or `gauntlet data prepare` another)"
        ) from exc
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


# Tries of the start-up store check when the store does not answer (a store container
# still starting, a blip), with the outage pauses between them, before the node gives up.
STORE_CHECK_TRIES = 4


async def _check_own_store(
    store: ObjectStore, published: FilesystemCommitment | S3Commitment, hotkey: str
) -> None:
    """Before the commitment goes on chain: a bucket validators cannot read would cost
    windows of work, found out later. A store that does not answer gets a few tries."""
    for attempt in range(STORE_CHECK_TRIES):
        try:
            await check_own_store(store, published, hotkey)
            return
        except StoreCheckError as exc:
            if not exc.transient or attempt == STORE_CHECK_TRIES - 1:
                raise StartupError(f"own bucket: {exc}") from exc
            log.warning("own bucket: %s; trying again", exc)
            await asyncio.sleep(outage_pause(attempt))


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


async def _take_lease(
    config: GauntletConfig,
    role: str,
    hotkey: str,
    chain: Chain,
    store: ObjectStore,
    peers: PeerDirectory,
    commitment: str,
    committed: str | None,
) -> UploaderLease:
    """Before the commitment goes on chain: refuse to start while another node holds the
    hotkey (a fresh lease in this node's bucket, or in the bucket committed before)."""
    try:
        instance = instance_id(config.node.state_dir, hotkey)
    except OSError as exc:
        raise StartupError(
            f"cannot keep the node's instance id in {config.node.state_dir}: {exc}"
        ) from exc
    lease = UploaderLease(
        hotkey=hotkey,
        instance=instance,
        role=role,
        commitment=commitment,
        replaced=committed,
        seen_own=committed == commitment,
    )
    elsewhere = []
    if committed is not None and committed != commitment:
        old = peers.store_for(hotkey, committed)
        if old is not None:
            elsewhere.append((old, describe_commitment(committed)))
    refused = await lease.acquire(
        store,
        chain,
        where=describe_commitment(commitment),
        stale_blocks=config.node.lease_windows * config.chain.blocks_per_window,
        take_over=config.node.take_over_lease,
        elsewhere=elsewhere,
    )
    if refused is not None:
        raise StartupError(refused)
    return lease


async def open_runtime(
    config: GauntletConfig, device: torch.device | None = None, role: str = "node"
) -> Runtime:
    """Load keys, check the bucket commitment is one readers accept, connect, check
    registration, check the own bucket, take the hotkey's uploader lease, publish the
    bucket commitment, load data and model. ``role`` names the node in its lease."""
    device = device or resolve_device(config)
    keypair = load_hotkey(config.wallet)
    hotkey = keypair.ss58_address
    lock_node(config.node.state_dir, hotkey)
    bucket = config.storage.bucket or default_bucket(hotkey)
    published = own_commitment(config, bucket)
    try:  # the very rule readers apply: found out now, not as "unreadable" windows later
        check_reachable(published, reader_policy(config), config.chain.network)
    except StoreCheckError as exc:
        raise StartupError(f"own bucket: {exc}") from exc
    chain = build_chain(config.chain, keypair)
    try:
        try:
            metagraph = await chain.metagraph()
        except ChainUnavailable as exc:
            raise StartupError(
                f"chain {config.chain.network} at {config.chain.endpoint} is unreachable: {exc}"
            ) from exc
        neuron = metagraph.by_hotkey(hotkey)
        if neuron is None:
            raise StartupError(
                f"hotkey {hotkey} is not registered on netuid {config.chain.netuid}: "
                "register it first: `gauntlet register` with the same flags (on a Bittensor "
                "network it prints the `btcli subnets register --netuid N --wallet W "
                "--wallet-hotkey H` command to run); the localnet registers its own nodes"
            )
        peers = PeerDirectory.for_config(config)
        store = _own_store(config, bucket)
        lease: UploaderLease | None = None
        try:
            await _check_own_store(store, published, hotkey)
            commitment = encode_commitment(published)
            committed = (await chain.commitments()).get(hotkey)
            lease = await _take_lease(
                config, role, hotkey, chain, store, peers, commitment, committed
            )
            if committed != commitment:
                if committed is not None:  # a new bucket: bring what nodes rebuild from
                    old = peers.store_for(hotkey, committed)
                    await move_bucket(old, store, describe_commitment(committed))
                await chain.commit(commitment)
            dataset, model = load_data_and_model(config, device)
        except BaseException:
            if lease is not None:  # a failed start leaves the hotkey free for another node
                await lease.release(store)
            await peers.close()
            await store.close()  # a failed start leaves no open session behind (no
            raise  # "Unclosed client session" after the one line that matters)
    except BaseException:
        await chain.close()
        raise
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
        peers=peers,
        lease=lease,
    )
