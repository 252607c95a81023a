"""``BittensorChain``: the :class:`Chain` interface over the bittensor 11.x SDK.

Everything goes through one ``bittensor.Client``: typed reads (metagraph, weights), raw
storage reads for the few scalars the node needs, and the SDK's intents for writes
(``SetWeights`` picks plaintext or timelocked commit-reveal from the subnet's settings and
quantises weights to u16; ``BurnedRegister``). Commitments have no intent, so they go as a
raw ``Commitments.set_commitment`` call signed by the hotkey.

No SDK type or exception leaves this module: results become :mod:`gauntlet.chain.base`
types and errors become its typed errors (see :mod:`gauntlet.chain.bittensor_errors`).

Retries are bounded and live here only. Reads are retried after a transport failure, with
the connection reopened and exponential backoff; writes are not, because a write that
failed mid-flight may already be in a block (a second copy of set_weights would be refused
by the rate limit, a second commitment would pay the deposit twice). After the last try:
:class:`ChainUnavailable`, which the node loop catches like any :class:`ChainError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import bittensor as bt
from bittensor.intents.registration import BurnedRegister
from bittensor.intents.weights import SetWeights

from gauntlet.chain.base import (
    Chain,
    ChainError,
    ChainUnavailable,
    Hyperparameters,
    Metagraph,
    Neuron,
    NotRegistered,
    Unauthorized,
)
from gauntlet.chain.bittensor_errors import TRANSPORT_ERRORS, describe, from_sdk

log = logging.getLogger(__name__)
T = TypeVar("T")

SubtensorStorage = bt.storage.SubtensorModule

# A commitment field is one ``Data::Raw{n}`` variant, n <= 128 bytes; a commitment holds
# at most ``Commitments.MaxFields`` of them, so longer strings are split across fields.
RAW_FIELD_BYTES = 128

# Past block timestamps never change; keep the most recent ones to spare RPC round-trips.
_TIMESTAMP_CACHE_SIZE = 4096


class BittensorChain(Chain):
    """One subnet of a Bittensor network (finney, test, a local subtensor).

    ``network`` is required and explicit: a network name the SDK knows (``"finney"``,
    ``"test"``, ``"local"``) or a ``ws://`` / ``wss://`` endpoint. The SDK defaults to
    finney; this adapter never does. ``signer`` is what the node already loaded: a hotkey
    keypair (``bittensor.sp_core.Keypair`` or any ``bt.Signer``) for weights and
    commitments, or a ``bt.Wallet`` (coldkey + hotkey), which burned registration needs.
    ``substrate`` swaps the SDK's RPC backend (tests use an in-memory one).
    ``fallback_endpoints`` are tried when ``network`` is unreachable; none by default, so
    the node talks only to the endpoint it was given.
    """

    def __init__(
        self,
        network: str,
        netuid: int,
        signer: bt.Signer | bt.KeyedWallet | bt.Wallet | None = None,
        *,
        substrate: bt.Substrate | None = None,
        fallback_endpoints: Sequence[str] = (),
        retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
    ) -> None:
        if not network or not network.strip():
            raise ValueError(
                "BittensorChain needs an explicit network (finney, test, local or a ws:// "
                "endpoint); refusing to fall back to the SDK's default"
            )
        if netuid < 0:
            raise ValueError(f"netuid must be non-negative, got {netuid}")
        self.netuid = netuid
        self.network = network.strip()  # as configured: a network name or an endpoint URL
        self._signer = signer
        self._retries = retries
        self._backoff = backoff
        self._max_backoff = max_backoff
        # archive_endpoints=[]: public archive pools are finney's; a read of pruned state
        # on our node falls back to an estimate (block_timestamp) instead.
        self._client = bt.Client(
            network.strip(),
            fallback_endpoints=list(fallback_endpoints),
            archive_endpoints=[],
            substrate=substrate,
        )
        self.endpoint: str = self._client.endpoint
        self._connected = False
        self._block_time: float | None = None
        self._timestamps: dict[int, float] = {}

    # ---- identity -----------------------------------------------------------------------

    @property
    def hotkey(self) -> str:
        """The ss58 address this chain writes for."""
        if self._signer is None:
            raise Unauthorized("this chain has no signer; writes need the hotkey")
        if isinstance(self._signer, bt.Signer):
            return str(self._signer.ss58_address)
        return str(bt.public_view(self._signer, "hotkey").ss58_address)

    def _wallet(self) -> bt.Signer | bt.KeyedWallet | bt.Wallet:
        if self._signer is None:
            raise Unauthorized("this chain has no signer; writes need the hotkey")
        return self._signer

    # ---- transport ----------------------------------------------------------------------

    async def close(self) -> None:
        if self._connected:
            self._connected = False
            with contextlib.suppress(*TRANSPORT_ERRORS):
                await self._client.close()

    async def _drop_connection(self) -> None:
        """Forget a broken connection so the next attempt opens a fresh one."""
        self._connected = False
        with contextlib.suppress(*TRANSPORT_ERRORS, bt.BittensorError):
            await self._client.close()

    async def _sleep_before(self, attempt: int) -> None:
        if attempt:
            await asyncio.sleep(min(self._max_backoff, self._backoff * 2 ** (attempt - 1)))

    async def _connect(self) -> None:
        """Open the connection; safe to retry because nothing has been sent yet."""
        if self._connected:
            return
        reason = "no attempt"
        for attempt in range(self._retries + 1):
            await self._sleep_before(attempt)
            try:
                await self._client.connect()
            except TRANSPORT_ERRORS as exc:
                reason = describe(exc)
                await self._drop_connection()
                continue
            except bt.ChainError as exc:
                raise from_sdk(exc, "connect") from None
            self._connected = True
            return
        raise ChainUnavailable(
            f"{self.endpoint} unreachable after {self._retries + 1} tries: {reason}"
        )

    async def _read(self, action: str, op: Callable[[], Awaitable[T]]) -> T:
        """Run a read, reconnecting and retrying after transport failures."""
        reason = "no attempt"
        for attempt in range(self._retries + 1):
            await self._sleep_before(attempt)
            await self._connect()
            try:
                return await op()
            except TRANSPORT_ERRORS as exc:
                reason = describe(exc)
                log.warning("chain read %s failed (try %d): %s", action, attempt + 1, reason)
                await self._drop_connection()
            except bt.BittensorError as exc:
                raise from_sdk(exc, action) from None
        raise ChainUnavailable(
            f"{action} on {self.endpoint} failed after {self._retries + 1} tries: {reason}"
        )

    async def _write(self, action: str, op: Callable[[], Awaitable[bt.ExtrinsicResult]]) -> None:
        """Submit once; a failed extrinsic raises the typed error with the chain's reason."""
        await self._connect()
        try:
            result = await op()
        except TRANSPORT_ERRORS as exc:
            await self._drop_connection()
            raise ChainUnavailable(f"{action} on {self.endpoint}: {describe(exc)}") from None
        except bt.BittensorError as exc:
            raise from_sdk(exc, action) from None
        if not result.success:
            raise from_sdk(result.error or bt.ChainError(result.message or "failed"), action)

    # ---- clock --------------------------------------------------------------------------

    async def current_block(self) -> int:
        return int(await self._read("current_block", self._client.block))

    async def block_time(self) -> float:
        # The SDK reads Aura.SlotDuration (12 s on finney, 0.25 s on fast-blocks localnets).
        if self._block_time is None:
            self._block_time = float(await self._read("block_time", self._client.block_time))
        return self._block_time

    async def block_timestamp(self, block: int) -> float:
        """The Timestamp pallet's time for a past block; head time + blocks x block time after.

        Pruned state (a lite node asked about an old block) and the genesis block (whose
        Timestamp is 0) also fall back to the estimate from the head.
        """
        if block in self._timestamps:
            return self._timestamps[block]
        head = await self.current_block()
        step = await self.block_time()
        if block <= head:
            stamp = await self._stored_timestamp(block)
            if stamp is not None:
                if len(self._timestamps) >= _TIMESTAMP_CACHE_SIZE:
                    self._timestamps.pop(next(iter(self._timestamps)))
                self._timestamps[block] = stamp
                return stamp
        head_stamp = await self._stored_timestamp(head)
        if head_stamp is None:
            raise ChainError(f"block_timestamp: no Timestamp.Now at head block {head}")
        return head_stamp + (block - head) * step

    async def _stored_timestamp(self, block: int) -> float | None:
        async def read() -> float | None:
            try:
                millis = await self._client.query(_key(bt.storage.Timestamp.Now), block=block)
                return int(millis) / 1000.0 if millis else None
            except bt.ChainError as exc:
                if exc.code in (bt.ErrorCode.NOT_FOUND, bt.ErrorCode.UNKNOWN):
                    log.debug("no stored timestamp for block %d: %s", block, describe(exc))
                    return None
                raise

        stamp = await self._read("block_timestamp", read)
        return stamp if stamp else None

    # ---- reads --------------------------------------------------------------------------

    async def metagraph(self) -> Metagraph:
        async def read() -> tuple[Any, dict[int, dict[int, float]]]:
            view = await self._client.at()  # one block for the graph and the weights
            graph = await view.subnets.metagraph(self.netuid, commitments=False)
            weights = await view.weights.weights(self.netuid) if graph is not None else {}
            return graph, weights

        graph, weights = await self._read("metagraph", read)
        if graph is None:
            raise ChainError(f"metagraph: subnet {self.netuid} does not exist on {self.endpoint}")
        return Metagraph(
            netuid=self.netuid,
            block=int(graph.block),
            neurons=tuple(_neuron(n) for n in graph.neurons),
            weights={
                int(v): {int(m): float(w) for m, w in row.items()} for v, row in weights.items()
            },
        )

    async def hyperparameters(self) -> Hyperparameters:
        async def read() -> Hyperparameters:
            view = await self._client.at()
            args = [self.netuid]
            tempo, rate, max_uids, immunity, max_validators, max_fields = await asyncio.gather(
                view.query(SubtensorStorage.Tempo, args),
                view.query(SubtensorStorage.WeightsSetRateLimit, args),
                view.query(SubtensorStorage.MaxAllowedUids, args),
                view.query(SubtensorStorage.ImmunityPeriod, args),
                view.query(SubtensorStorage.MaxAllowedValidators, args),
                view.constant(bt.constants.Commitments.MaxFields),
            )
            return Hyperparameters(
                tempo=int(tempo or 0),
                weights_rate_limit=int(rate or 0),
                max_uids=int(max_uids or 0),
                immunity_period=int(immunity or 0),
                max_validators=int(max_validators or 0),
                commitment_max_bytes=int(max_fields or 0) * RAW_FIELD_BYTES,
            )

        return await self._read("hyperparameters", read)

    async def commitments(self) -> dict[str, str]:
        """Plaintext (``Raw``) commitments; sealed timelocked ones are skipped until revealed."""
        records = await self._read(
            "commitments", lambda: self._client.subnets.commitments(self.netuid)
        )
        found: dict[str, str] = {}
        for hotkey, record in records.items():
            value = record.value
            if value is not None:
                found[str(hotkey)] = str(value)
        return found

    async def _uid(self, hotkey: str) -> int | None:
        uid = await self._read(
            "uid", lambda: self._client.query(_key(SubtensorStorage.Uids), [self.netuid, hotkey])
        )
        return None if uid is None else int(uid)

    # ---- writes -------------------------------------------------------------------------

    async def register(self) -> int:
        """The hotkey's uid; registers by burning TAO from the coldkey when it has none.

        Burned registration is signed by the coldkey, so it needs a ``bt.Wallet`` (or a
        wallet-shaped object); a node holding only its hotkey gets :class:`NotRegistered`.
        """
        hotkey = self.hotkey
        uid = await self._uid(hotkey)
        if uid is not None:
            return uid
        wallet = self._wallet()
        if isinstance(wallet, bt.Signer):
            raise NotRegistered(
                f"register: {hotkey} has no uid on netuid {self.netuid} and this node holds "
                f"only the hotkey; register it with the coldkey "
                f"(`btcli subnets register --netuid {self.netuid}`)"
            )
        intent = BurnedRegister(netuid=self.netuid, hotkey_ss58=hotkey)
        # execute() submits this intent MEV-shielded, as the SDK requires for it.
        await self._write(
            "register",
            lambda: self._client.execute(intent, wallet, wait_for_finalization=False),
        )
        uid = await self._uid(hotkey)
        if uid is None:
            raise NotRegistered(f"register: extrinsic included but {hotkey} has no uid yet")
        return uid

    async def commit(self, data: str) -> None:
        raw = data.encode()
        max_bytes = (await self.hyperparameters()).commitment_max_bytes
        if len(raw) > max_bytes:
            raise ChainError(f"commit: commitment is {len(raw)} bytes, the chain holds {max_bytes}")
        call = bt.calls.Commitments.set_commitment(netuid=self.netuid, info=commitment_info(raw))
        wallet = self._wallet()
        await self._write(
            "commit",
            lambda: self._client.submit_call(
                call, wallet, signer="hotkey", wait_for_finalization=False
            ),
        )

    async def set_weights(self, uids: Sequence[int], weights: Sequence[float]) -> None:
        """Set weights through ``SetWeights``: u16 quantisation, rate-limit and registration
        preflight, plaintext or timelocked commit-reveal as the subnet is configured."""
        try:
            intent = SetWeights(
                netuid=self.netuid, uids=[int(u) for u in uids], weights=[float(w) for w in weights]
            )
        except bt.BittensorError as exc:
            raise from_sdk(exc, "set_weights") from None
        wallet = self._wallet()
        # Inclusion is enough: the node only needs to know the chain accepted the weights,
        # and waiting for finality would hold the window loop for several blocks.
        await self._write(
            "set_weights",
            lambda: self._client.execute(intent, wallet, wait_for_finalization=False),
        )


def _key(item: Any) -> tuple[str, str]:
    """A generated storage descriptor as the (pallet, item) pair ``Client.query`` is typed for."""
    return (str(item.container), str(item.name))


def commitment_info(raw: bytes) -> dict[str, list[dict[str, str]]]:
    """``CommitmentInfo`` for ``raw``: consecutive ``Raw{n}`` fields of at most 128 bytes."""
    chunks = [raw[i : i + RAW_FIELD_BYTES] for i in range(0, len(raw), RAW_FIELD_BYTES)]
    return {"fields": [{f"Raw{len(chunk)}": "0x" + chunk.hex()} for chunk in chunks or [b""]]}


def _neuron(n: Any) -> Neuron:
    """A project :class:`Neuron` from the SDK's ``MetagraphNeuron``."""
    return Neuron(
        uid=int(n.uid),
        hotkey=str(n.hotkey),
        coldkey=str(n.coldkey),
        stake=_units(n.total_stake),
        validator_permit=bool(n.validator_permit),
        last_update=int(n.last_update),
        incentive=float(n.incentive),
        dividends=float(n.dividends),
        emission=_units(n.emission),
        registered_at=int(n.block_at_registration),
    )


def _units(balance: bt.Balance) -> float:
    """A balance in whole units of its own currency (the subnet's alpha for stake and emission).

    ``Balance.tao`` refuses alpha on purpose; the node only compares these amounts within one
    subnet, so the unit does not need converting.
    """
    return int(balance.rao) / 1e9
