"""The Gauntlet wire contract: schemas, keys, window arithmetic, payloads, assignment.

Importable without torch. Everything here is deterministic and documented in
protocol/SPEC.md; a third-party client can implement against this package alone.
"""

from protocol.version import PROTOCOL_VERSION

__all__ = ["PROTOCOL_VERSION"]
