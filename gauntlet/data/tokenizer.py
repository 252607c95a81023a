"""Tokenizers for dataset preparation: the built-in byte tokenizer, and any
Hugging Face ``tokenizer.json`` loaded offline with the ``tokenizers`` library.

Both expose the small :class:`Tokenizer` surface that preparation needs: a
name, the vocabulary size (which picks the on-disk token dtype), the
end-of-document id, the sha256 of the tokenizer file (None for bytes), and
batch encoding to numpy arrays.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from gauntlet.data.manifest import DatasetError, TokenDtype

# Tried in this order when no EOS token is named: the spellings used by the
# common tokenizer families (GPT-2/NeoX, LLaMA/Mistral, Gemma, LLaMA-3).
EOS_CANDIDATES = ("<|endoftext|>", "</s>", "<eos>", "<|end_of_text|>")


class Tokenizer(Protocol):
    name: str
    vocab_size: int
    eot_id: int
    sha256: str | None

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]: ...

    def decode(self, tokens: Iterable[int]) -> str: ...


class ByteTokenizer:
    """Tokens 0..255 are the UTF-8 bytes of the text. Byte 0 (NUL, never found
    in real text) doubles as the end-of-document separator in datasets."""

    name = "byte"
    vocab_size = 256
    eot_id = 0
    sha256: str | None = None  # no file: the name says it all

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def encode_array(self, text: str) -> np.ndarray:
        """Same as :meth:`encode`, as a uint8 array (fast path for datasets)."""
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        return [self.encode_array(t) for t in texts]

    def decode(self, tokens: Iterable[int] | bytes) -> str:
        # A window may cut a multi-byte character in half: replace, don't raise.
        return bytes(tokens).decode("utf-8", errors="replace")


class HFTokenizer:
    """A Hugging Face ``tokenizer.json`` (any model type), read from disk only.

    ``name`` is ``"hf:<model type>"`` (e.g. ``hf:bpe``), taken from the file's
    contents rather than its path, so the same file prepared anywhere gives the
    same dataset id; ``sha256`` is what identifies the exact tokenizer.
    ``eos_token`` names the end-of-document token; by default the first of
    :data:`EOS_CANDIDATES` that the vocabulary has."""

    def __init__(self, path: Path, *, eos_token: str | None = None) -> None:
        from tokenizers import Tokenizer as _HF  # optional dependency: import on use

        # One read serves the hash and the parse (from_str rather than
        # from_file), so the recorded sha256 is of exactly what was loaded.
        raw = Path(path).read_bytes()
        try:
            model_type = str(json.loads(raw)["model"]["type"]).lower()
            self._tok: Any = _HF.from_str(raw.decode("utf-8"))
        except Exception as e:  # tokenizers reports a malformed file as a bare Exception
            raise DatasetError(f"{path} is not a usable tokenizer.json: {e}") from e
        self.name = f"hf:{model_type}"
        self.sha256: str | None = hashlib.sha256(raw).hexdigest()
        self.vocab_size = int(self._tok.get_vocab_size(with_added_tokens=True))
        self.eot_id = self._find_eos(path, eos_token)

    def _find_eos(self, path: Path, eos_token: str | None) -> int:
        for name in [eos_token] if eos_token is not None else list(EOS_CANDIDATES):
            token_id = self._tok.token_to_id(name)
            if token_id is not None:
                return int(token_id)
        wanted = repr(eos_token) if eos_token is not None else f"any of {EOS_CANDIDATES}"
        raise DatasetError(f"{path} has no end-of-document token {wanted}; name one")

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        # The "fast" variant skips offset tracking, which datasets never use;
        # special tokens are not added: documents are separated by eot_id only.
        encodings = self._tok.encode_batch_fast(list(texts), add_special_tokens=False)
        return [np.asarray(e.ids, dtype=np.int64) for e in encodings]

    def decode(self, tokens: Iterable[int]) -> str:
        return str(self._tok.decode([int(t) for t in tokens], skip_special_tokens=False))


def load_tokenizer(path: Path | None, *, eos_token: str | None = None) -> Tokenizer:
    """The byte tokenizer for ``None``, else the ``tokenizer.json`` at ``path``."""
    if path is None:
        if eos_token is not None:
            raise ValueError("the byte tokenizer's end-of-document id is fixed (0)")
        return ByteTokenizer()
    return HFTokenizer(path, eos_token=eos_token)


def dtype_for_vocab(vocab_size: int) -> TokenDtype:
    """Smallest unsigned dtype that holds ids ``0 .. vocab_size - 1``."""
    if vocab_size <= 1 << 8:
        return "uint8"
    return "uint16" if vocab_size <= 1 << 16 else "uint32"
