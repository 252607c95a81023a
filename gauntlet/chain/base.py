"""The ``Chain`` interface and the project types it returns (never SDK types).

A ``Chain`` is bound to one subnet (netuid) and, for writes, one hotkey.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field


class ChainError(Exception):
    """Base class; ``reason`` is a stable slug for logs and metrics."""

    reason = "chain"


class ChainUnavailable(ChainError):
    reason = "unavailable"


class NotRegistered(ChainError):
    reason = "not_registered"


class NoValidatorPermit(ChainError):
    reason = "no_validator_permit"


class RateLimited(ChainError):
    reason = "rate_limited"


class InvalidWeights(ChainError):
    reason = "invalid_weights"


class Unauthorized(ChainError):
    """A write whose signature does not match the hotkey it acts for."""

    reason = "unauthorized"


@dataclass(frozen=True)
class Neuron:
    uid: int
    hotkey: str
    coldkey: str
    stake: float
    validator_permit: bool
    last_update: int
    incentive: float = 0.0
    dividends: float = 0.0
    emission: float = 0.0
    registered_at: int = 0


@dataclass(frozen=True)
class Metagraph:
    netuid: int
    block: int
    neurons: tuple[Neuron, ...]
    # weights[validator_uid] = {miner_uid: normalised weight}
    weights: dict[int, dict[int, float]] = field(default_factory=dict)

    def by_hotkey(self, hotkey: str) -> Neuron | None:
        return next((n for n in self.neurons if n.hotkey == hotkey), None)

    def by_uid(self, uid: int) -> Neuron | None:
        return next((n for n in self.neurons if n.uid == uid), None)


@dataclass(frozen=True)
class Hyperparameters:
    tempo: int
    weights_rate_limit: int
    max_uids: int
    immunity_period: int
    max_validators: int
    commitment_max_bytes: int


class Chain(ABC):
    """Async access to one subnet. Writes act for the hotkey the chain was built with."""

    netuid: int

    @abstractmethod
    async def current_block(self) -> int: ...

    @abstractmethod
    async def block_time(self) -> float:
        """Seconds per block (target)."""

    @abstractmethod
    async def block_timestamp(self, block: int) -> float:
        """Unix time of ``block``; for future blocks, the expected time."""

    @abstractmethod
    async def metagraph(self) -> Metagraph: ...

    @abstractmethod
    async def hyperparameters(self) -> Hyperparameters: ...

    @abstractmethod
    async def register(self) -> int:
        """Register this hotkey on the subnet; return its uid (existing uid if already registered)."""

    @abstractmethod
    async def commit(self, data: str) -> None:
        """Publish this hotkey's commitment (e.g. a bucket commitment)."""

    @abstractmethod
    async def commitments(self) -> dict[str, str]:
        """hotkey -> raw committed string, for every hotkey that committed. Untrusted."""

    @abstractmethod
    async def set_weights(self, uids: Sequence[int], weights: Sequence[float]) -> None:
        """Set this validator's weights; raises a :class:`ChainError` with the chain's reason."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    async def wait_for_block(self, block: int, *, poll_fraction: float = 0.25) -> int:
        """Sleep until the chain reaches ``block``; return the block seen."""
        while True:
            current = await self.current_block()
            if current >= block:
                return current
            step = await self.block_time()
            await asyncio.sleep(max(0.05, min(step * poll_fraction, (block - current) * step)))
