"""``SimChainClient``: the :class:`Chain` interface over the simulated chain's HTTP API.

Retries are bounded and live here only. A request is retried when it never reached the
service (connection refused: the service is starting or restarting); a read is also retried
after a timeout or dropped connection. A write is not, because it may already have been
applied and a re-signed copy would apply twice. After the last try: :class:`ChainUnavailable`.
No aiohttp type or exception leaves this module.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import aiohttp

from gauntlet.chain.base import (
    Chain,
    ChainUnavailable,
    Hyperparameters,
    Metagraph,
    Neuron,
    Unauthorized,
)
from gauntlet.chain.sim.errors import error_from_reason
from gauntlet.chain.sim.wire import seal
from protocol.signing import Signer


class SimChainClient(Chain):
    """One subnet of a simulated chain; ``keypair`` (the hotkey) is needed for writes only."""

    def __init__(
        self,
        endpoint: str,
        netuid: int,
        keypair: Signer | None = None,
        *,
        retries: int = 4,
        backoff: float = 0.1,
        timeout: float = 10.0,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.netuid = netuid
        self._keypair = keypair
        self._retries = retries
        self._backoff = backoff
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._clock: tuple[float, float] | None = None  # (genesis_time, block_time), immutable
        self._last_nonce = 0
        # Writes go one at a time so their nonces reach the service in increasing order.
        self._write_lock = asyncio.Lock()

    # ---- transport ----------------------------------------------------------------------

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _request(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None
    ) -> Any:
        idempotent = method == "GET"
        reason = "no attempt"
        for attempt in range(self._retries + 1):
            if attempt:
                await asyncio.sleep(self._backoff * 2 ** (attempt - 1))
            try:
                async with self._http().request(
                    method, self.endpoint + path, params=params, json=body
                ) as resp:
                    status = resp.status
                    try:
                        payload = await resp.json(content_type=None)
                    except ValueError:
                        payload = None
            except aiohttp.ClientConnectorError as exc:
                reason = f"cannot connect: {exc}"
                continue
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
                if idempotent:
                    continue
                raise ChainUnavailable(f"{method} {path} failed mid-request: {reason}") from None
            if isinstance(payload, dict) and isinstance(payload.get("error"), str):
                raise error_from_reason(payload["error"], str(payload.get("message", "")))
            if status >= 500 or payload is None:
                reason = f"HTTP {status} without a JSON answer"
                if idempotent:
                    continue
                raise ChainUnavailable(f"{method} {path}: {reason}")
            return payload
        raise ChainUnavailable(
            f"{self.endpoint}{path} unreachable after {self._retries + 1} tries: {reason}"
        )

    async def _get(self, path: str, **params: Any) -> Any:
        return await self._request("GET", path, params=params)

    async def _write(self, path: str, body: dict[str, Any]) -> Any:
        if self._keypair is None:
            raise Unauthorized("this client has no keypair; writes need the hotkey")
        async with self._write_lock:
            # Wall-clock nanoseconds keep nonces increasing across restarts of this process.
            self._last_nonce = max(self._last_nonce + 1, time.time_ns())
            envelope = seal(self._keypair, path, self._last_nonce, body)
            return await self._request("POST", path, body=envelope)

    # ---- clock --------------------------------------------------------------------------

    async def _block_info(self) -> dict[str, Any]:
        info: dict[str, Any] = await self._get("/block")
        self._clock = (float(info["genesis_time"]), float(info["block_time"]))
        return info

    async def current_block(self) -> int:
        return int((await self._block_info())["block"])

    async def block_time(self) -> float:
        if self._clock is None:
            await self._block_info()
        assert self._clock is not None
        return self._clock[1]

    async def block_timestamp(self, block: int) -> float:
        if self._clock is None:
            await self._block_info()
        assert self._clock is not None
        genesis, block_time = self._clock
        return genesis + block * block_time

    # ---- reads --------------------------------------------------------------------------

    async def metagraph(self) -> Metagraph:
        data = await self._get("/metagraph", netuid=self.netuid)
        return Metagraph(
            netuid=int(data["netuid"]),
            block=int(data["block"]),
            neurons=tuple(Neuron(**n) for n in data["neurons"]),
            weights={
                int(v): {int(m): float(w) for m, w in row.items()}
                for v, row in data["weights"].items()
            },
        )

    async def hyperparameters(self) -> Hyperparameters:
        return Hyperparameters(**await self._get("/hyperparameters", netuid=self.netuid))

    async def commitments(self) -> dict[str, str]:
        data = await self._get("/commitments", netuid=self.netuid)
        return {str(k): str(v) for k, v in data.items()}

    async def events(self, after: int = 0) -> list[dict[str, Any]]:
        """This subnet's event log (register, commit, set_weights, epoch) after event id ``after``."""
        found: list[dict[str, Any]] = await self._get("/events", after=after, netuid=self.netuid)
        return found

    # ---- writes -------------------------------------------------------------------------

    async def register(self, *, stake: float | None = None, coldkey: str | None = None) -> int:
        """Register (or look up) this hotkey. ``stake`` is the sim-only faucet: it sets the stake."""
        body: dict[str, Any] = {"netuid": self.netuid}
        if stake is not None:
            body["stake"] = float(stake)
        if coldkey is not None:
            body["coldkey"] = coldkey
        return int((await self._write("/register", body))["uid"])

    async def commit(self, data: str) -> None:
        await self._write("/commit", {"netuid": self.netuid, "data": data})

    async def set_weights(self, uids: Sequence[int], weights: Sequence[float]) -> None:
        body: dict[str, Any] = {
            "netuid": self.netuid,
            "uids": [int(u) for u in uids],
            "weights": [float(w) for w in weights],
        }
        await self._write("/set_weights", body)
