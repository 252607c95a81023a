"""Shared by the data tests: a small corpus with known documents."""

from __future__ import annotations

import json
from pathlib import Path

# (relative path, contents): what prepare_dataset should and should not read.
CORPUS = {
    "a.py": "print('hello')\n",
    "b.txt": "caf\u00e9 \u2603 " * 40,
    "sub/c.md": "# title\n" + "word " * 200,
    "sub/deeper/d.jsonl": "\n".join(
        [
            json.dumps({"text": "first json doc " * 10}),
            "",
            json.dumps({"other": 1}),
            json.dumps({"text": "second"}),
        ]
    ),
    "ignored.bin": "not text " * 100,
    "sub/__pycache__/e.py": "cached = True\n" * 100,
}
# The documents in the order prepare_dataset reads them (sorted paths).
DOCUMENTS = [
    CORPUS["a.py"],
    CORPUS["b.txt"],
    CORPUS["sub/c.md"],
    "first json doc " * 10,
    "second",
]


def write_corpus(root: Path, files: dict[str, str] = CORPUS) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def expected_stream() -> bytes:
    return b"".join(doc.encode() + b"\x00" for doc in DOCUMENTS)


def train_tiny_bpe(path: Path, texts: list[str], vocab_size: int = 400) -> Path:
    """A byte-level BPE tokenizer.json trained on ``texts`` (no download), with
    ``<|endoftext|>`` as its end-of-document token; > 256 ids, so uint16."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer=trainer)
    tok.save(str(path))
    return path
