"""Gauntlet: a node for a permissionless, incentivized LLM training subnet on Bittensor."""

__version__ = "0.1.0"
