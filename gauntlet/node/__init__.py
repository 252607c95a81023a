"""The window loops that wire the layers together for the miner and the validator."""
