"""The chain layer: one ``Chain`` interface over Bittensor and the simulated chain."""

from gauntlet.chain.base import (
    Chain,
    ChainError,
    ChainUnavailable,
    Hyperparameters,
    InvalidWeights,
    Metagraph,
    Neuron,
    NotRegistered,
    NoValidatorPermit,
    RateLimited,
    Unauthorized,
)

__all__ = [
    "Chain",
    "ChainError",
    "ChainUnavailable",
    "Hyperparameters",
    "Metagraph",
    "Neuron",
    "NotRegistered",
    "NoValidatorPermit",
    "RateLimited",
    "InvalidWeights",
    "Unauthorized",
]
