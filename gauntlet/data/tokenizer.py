"""Byte-level tokenizer: token = UTF-8 byte. No vocabulary file, no download,
and every string round-trips."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


class ByteTokenizer:
    """Tokens 0..255 are the UTF-8 bytes of the text. Byte 0 (NUL, never found
    in real text) doubles as the end-of-document separator in datasets."""

    name = "byte"
    vocab_size = 256
    eot_id = 0

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def encode_array(self, text: str) -> np.ndarray:
        """Same as :meth:`encode`, as a uint8 array (fast path for datasets)."""
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)

    def decode(self, tokens: Iterable[int] | bytes) -> str:
        # A window may cut a multi-byte character in half: replace, don't raise.
        return bytes(tokens).decode("utf-8", errors="replace")
