"""The one strict parser for JSON and hex that arrive from the network.

Every reader of peer bytes (payload headers and manifests, signed envelopes,
chain commitments) goes through here, so "what counts as the same document"
has one answer. Two parsers that disagree on a document (a duplicate key read
first-wins by one and last-wins by another, a BOM one skips and another
rejects) let an attacker show different content to different nodes under one
signature or one hash. The rules (SPEC "Parser rules"):

* bytes are UTF-8 exactly: no byte-order mark, no UTF-16/32 (Python's
  ``json.loads(bytes)`` silently accepts all three);
* objects never repeat a key, at any depth;
* no ``NaN``/``Infinity`` constants and no number that overflows to infinity;
* nesting is bounded (the interpreter's recursion limit, turned into an error);
* hex is canonical: lower-case ``[0-9a-f]`` pairs only (``bytes.fromhex``
  also takes upper case and whitespace, so one signature would have many
  spellings, and so the object holding it many hashes).
"""

from __future__ import annotations

import json
import math
import re
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from protocol.errors import MalformedPayload, ProtocolError

M = TypeVar("M", bound=BaseModel)

_HEX = re.compile(r"(?:[0-9a-f]{2})*")
_BOM = "\ufeff"


class _Reject(Exception):
    """Raised inside json's hooks; turned into the caller's error type."""


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _Reject("JSON object has duplicate keys")
    return result


def _no_constant(name: str) -> object:
    raise _Reject(f"JSON holds the non-standard constant {name}")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses to inf, which JSON cannot carry
        raise _Reject(f"JSON number {text[:20]} overflows to infinity")
    return value


def decode_utf8(raw: bytes | str, what: str, error: type[ProtocolError] = MalformedPayload) -> str:
    """``raw`` as text: exact UTF-8, no BOM, no lone surrogates."""
    if isinstance(raw, bytes | bytearray | memoryview):
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise error(f"{what} is not UTF-8") from None
    else:
        text = raw
        try:  # a str from a JSON/chain decoder can hold lone surrogates, which have no UTF-8
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise error(f"{what} is not UTF-8 text") from None
    if text.startswith(_BOM):
        raise error(f"{what} starts with a byte-order mark")
    return text


def parse_json(
    raw: bytes | str, what: str, error: type[ProtocolError] = MalformedPayload
) -> object:
    """Standard JSON only (see the module docstring); ``error`` for anything else."""
    text = decode_utf8(raw, what, error)
    try:
        return json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_constant=_no_constant,
            parse_float=_finite_float,
        )
    except _Reject as exc:
        raise error(f"{what}: {exc}") from None
    # ValueError covers JSONDecodeError and ints over Python's digit limit;
    # RecursionError covers adversarially deep nesting.
    except (ValueError, RecursionError) as exc:
        raise error(f"{what} is not valid JSON: {type(exc).__name__}") from None


def parse_model(
    raw: bytes | str, model: type[M], what: str, error: type[ProtocolError] = MalformedPayload
) -> M:
    """``raw`` through :func:`parse_json`'s rules, then ``model``'s schema.

    The schema validates the same text (pydantic's JSON mode, so its number and
    string rules apply); the strict pass only guarantees there is one reading.
    """
    text = decode_utf8(raw, what, error)
    parse_json(text, what, error)
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        raise error(
            f"{what} fails the {model.__name__} schema ({exc.error_count()} errors)"
        ) from None


def parse_hex(text: object, what: str, error: type[ProtocolError] = MalformedPayload) -> bytes:
    """Canonical lower-case hex (even length, no prefix, no spaces) as bytes."""
    if not isinstance(text, str) or _HEX.fullmatch(text) is None:
        raise error(f"{what} is not canonical lower-case hex")
    return bytes.fromhex(text)
