"""Structure-aware fuzzer for sealed contributions and reveals (protocol.sealed), the first
bytes of a miner's upload a validator parses.

Starts from real sealed objects (``seal_payload`` over real signed payloads) and mutates,
several at once: the magic and the header length (edge integers), the signed header's
fields (sizes, hashes, nonce, window, netuid, hotkey; validly re-signed, so the checks
behind the signature are reached), the envelope text (duplicate keys, BOM, UTF-16, case),
the ciphertext (truncated, extended, bit-flipped, with or without its hash following) and
the revealed key and reveal document. Each case runs the validator's whole path:
``open_sealed`` → ``unseal`` with the (mutated) key → ``decode_payload``, and the reveal
through ``open_reveal``. Every outcome must be an accepted object or a typed
``ProtocolError``; anything else is a bug.

    .venv/bin/python bench/fuzz_sealed.py --cases 100000   # JSON on stdout; exit 1 on a bug
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import struct
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from bench.fuzz import (  # noqa: E402
    EDGE_INTS,
    LIMITS,
    NETUID,
    ODD_VALUES,
    WINDOW,
    Case,
    Tally,
    build,
    fuzz_cli,
    make_bases,
)
from protocol.container import decode_payload  # noqa: E402
from protocol.envelope import ENVELOPE_DOMAIN  # noqa: E402
from protocol.sealed import (  # noqa: E402
    MAGIC,
    make_reveal,
    open_reveal,
    open_sealed,
    seal_payload,
    unseal,
)
from protocol.signing import keypair_from_uri, sign  # noqa: E402

_PREFIX = struct.Struct("<8sI")  # magic, header length (as protocol.sealed lays it out)
HEADER_FIELDS = ["netuid", "window", "uid", "hotkey", "nonce", "key_sha256", "payload_sha256",
                 "payload_size", "ciphertext_sha256", "ciphertext_size", "aead", "kind",
                 "protocol_version"]  # fmt: skip


def _sign_envelope(body: dict[str, Any], signer: Any, text_edit: Any = None) -> bytes:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    if text_edit is not None:
        text = text_edit(text)
    signature = sign(signer, ENVELOPE_DOMAIN + text.encode("utf-8", "surrogatepass")).hex()
    envelope = {"body": text, "kind": "envelope", "protocol_version": 2,
                "signature": signature, "signer": signer.ss58_address}  # fmt: skip
    return json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode(
        "utf-8", "surrogatepass"
    )


def one_case(rng: random.Random, payloads: list[bytes], signer: Any) -> tuple[bytes, bytes, bytes]:
    """(sealed object bytes, key to open it with, reveal bytes), mutated."""
    payload = rng.choice(payloads)
    raw, key = seal_payload(payload, netuid=NETUID, window=WINDOW, uid=1, signer=signer)
    magic, header_len = _PREFIX.unpack_from(raw)
    envelope = json.loads(raw[_PREFIX.size : _PREFIX.size + header_len])
    header = json.loads(envelope["body"])
    ciphertext = raw[_PREFIX.size + header_len :]
    reveal = make_reveal(netuid=NETUID, window=WINDOW, key=key, signer=signer)
    resign, text_edit, envelope_bytes = True, None, b""
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(9)
        if kind == 0:  # a header field gets an edge or odd value
            name = rng.choice(HEADER_FIELDS)
            header[name] = rng.choice([*EDGE_INTS, *ODD_VALUES, "00" * rng.choice([6, 12, 32, 33])])
        elif kind == 1:  # ciphertext truncated, extended or flipped; its hash may follow
            cut = rng.randrange(len(ciphertext) + 1)
            ciphertext = rng.choice([ciphertext[:cut], ciphertext + bytes(rng.randrange(1, 64)),
                                     _flip(rng, ciphertext)])  # fmt: skip
            if rng.random() < 0.5:
                header["ciphertext_sha256"] = hashlib.sha256(ciphertext).hexdigest()
                header["ciphertext_size"] = len(ciphertext)
        elif kind == 2:  # the key: wrong, short, long
            key = rng.choice([bytes(32), key[:16], key + b"\0", _flip(rng, key), b""])
        elif kind == 3:  # the envelope text: duplicate keys, case, whitespace
            text_edit = rng.choice([
                lambda t: t.replace('"window":', '"window":1,"window":', 1),
                lambda t: t.replace('"nonce":"', '"nonce":" ', 1),
                lambda t: t.upper(),
                lambda t: "\ufeff" + t,
                lambda t: t[: len(t) // 2],
            ])  # fmt: skip
        elif kind == 4:  # not re-signed: the old signature over a changed header
            resign = False
            header["uid"] = rng.choice(EDGE_INTS)
        elif kind == 5:  # the envelope bytes in another encoding or with a BOM
            envelope_bytes = rng.choice([b"\xef\xbb\xbf", b"\xff\xfe", b" "])
        elif kind == 6:  # the reveal document
            reveal = rng.choice([reveal[: rng.randrange(len(reveal) + 1)], reveal.upper(),
                                 reveal.replace(b'"key":"', b'"key":"00', 1), b"{}", b"[]"])  # fmt: skip
        elif kind == 7:  # the payload inside is junk that seals fine
            junk = bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
            raw2, key = seal_payload(rng.choice([junk, payload[:-1]]), netuid=NETUID,
                                     window=WINDOW, uid=1, signer=signer)  # fmt: skip
            header_len = _PREFIX.unpack_from(raw2)[1]
            envelope = json.loads(raw2[_PREFIX.size : _PREFIX.size + header_len])
            header = json.loads(envelope["body"])
            ciphertext = raw2[_PREFIX.size + header_len :]
        else:  # prefix: magic and header length
            magic = rng.choice([magic, MAGIC[:7] + b"\x02", bytes(8), magic[::-1]])
    if resign:
        body = _sign_envelope(header, signer, text_edit)
    else:  # the changed header under the original signature
        envelope["body"] = json.dumps(header, sort_keys=True, separators=(",", ":"))
        body = json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode()
    body = envelope_bytes + body
    length = len(body)
    if rng.random() < 0.1:
        length = rng.choice(EDGE_INTS) % 2**32
    return _PREFIX.pack(magic, length) + body + ciphertext, key, reveal


def _flip(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return b"\1"
    at = rng.randrange(len(data))
    return data[:at] + bytes([data[at] ^ (1 << rng.randrange(8))]) + data[at + 1 :]


def run_fuzz(cases: int, seed: int = 0) -> dict[str, Any]:
    """Run ``cases`` mutated sealed objects through the validator's path; outcomes by type."""
    rng = random.Random(seed)
    signer = keypair_from_uri("//gauntlet/fuzz")
    payloads = [
        build(Case(b.header, b.data, b.manifest), signer) for b in make_bases(rng, signer, 4)
    ]
    tally = Tally()
    for index in range(cases):
        raw, key, reveal = one_case(rng, payloads, signer)
        tally.record(index, functools.partial(_open, raw, key, signer), stage="sealed")
        tally.record(index, functools.partial(_reveal, reveal, signer), stage="reveal")
    return {"target": "sealed", **tally.report(cases, seed)}


def _open(raw: bytes, key: bytes, signer: Any) -> str:
    sealed = open_sealed(raw, expected_hotkey=signer.ss58_address, expected_window=WINDOW,
                         expected_netuid=NETUID, max_bytes=LIMITS.max_bytes)  # fmt: skip
    payload = unseal(sealed, key)
    decode_payload(payload, limits=LIMITS, expected_hotkey=signer.ss58_address,
                   expected_window=WINDOW, expected_netuid=NETUID)  # fmt: skip
    return "accepted"


def _reveal(raw: bytes, signer: Any) -> str:
    open_reveal(raw, expected_hotkey=signer.ss58_address, expected_window=WINDOW, netuid=NETUID)
    return "accepted"


def main() -> int:
    return fuzz_cli(run_fuzz, __doc__ or "")


if __name__ == "__main__":
    sys.exit(main())
