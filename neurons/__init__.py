"""Thin entry points: ``python neurons/miner.py`` is ``gauntlet miner``."""
