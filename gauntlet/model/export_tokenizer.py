"""The tokenizer files of a Hugging Face export, so ``AutoTokenizer.from_pretrained`` works.

A model trained on a byte-level dataset (the default: token = UTF-8 byte) gets a
``tokenizer.json`` that encodes exactly so: byte b is token b. It is a BPE without merges
over GPT-2's byte-to-character alphabet, which the ``tokenizers`` library decodes back to
bytes. A model trained on a dataset of a Hugging Face tokenizer gets that tokenizer's file.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

BYTE_VOCAB = 256


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map (what ``ByteLevel`` uses)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


def byte_tokenizer_json() -> str:
    """tokenizer.json of the byte tokenizer: token id b is UTF-8 byte b."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    vocab = {char: b for b, char in _bytes_to_unicode().items()}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.decoder = decoders.ByteLevel()
    return str(tokenizer.to_str())


def write_tokenizer(out_dir: Path, vocab_size: int, tokenizer: Path | None, max_len: int) -> bool:
    """Write ``tokenizer.json`` and ``tokenizer_config.json`` into ``out_dir``: a copy of
    ``tokenizer`` if given, else the byte tokenizer when the model's vocabulary is bytes.
    Returns False (nothing written) for a larger vocabulary without a tokenizer file."""
    if tokenizer is not None:
        shutil.copyfile(tokenizer, out_dir / "tokenizer.json")
    elif vocab_size == BYTE_VOCAB:
        (out_dir / "tokenizer.json").write_text(byte_tokenizer_json())
    else:
        return False
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": max_len}
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    return True
