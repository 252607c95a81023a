"""Pseudo-gradient codecs: how a contribution's tensors encode Δ."""
