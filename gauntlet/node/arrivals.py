"""Observed arrival: which sealed uploads a validator saw in time, decided from its own polls.

A miner's bucket server is adversarial: its ``Last-Modified`` can be backdated and its
ETag can name anything. So a validator never asks the server *when* an object was
stored; it polls, downloads each new version it sees, and stamps it with the chain
head it read. This module is the pure core of that rule (no I/O, no clocks):

- a poll round reads the head before it starts (``started``) and after it ends
  (``ended``); the versions it found count only if ``ended`` is still before the
  observation close ``C``: a version served at head ``>= C`` may have been made after
  the reveals began (when others' updates are readable), so it never counts, whatever
  the miner's server says;
- the version that counts for a uid is the latest one found in a counting round; its
  ``block`` is the head at which that version was first found (copy decisions use it);
- the window's observation is *complete* when a counting round started at or after the
  deadline block ``D``: every upload stored before the deadline was then in view;
- a uid first found by the round that closed the window is *late*; one with an accepted
  version keeps it, whatever it uploads afterwards;
- a window whose upload phase a chain outage of at least ``MIN_OUTAGE_BLOCKS`` blocks
  overlapped is *spoiled*: never complete, so nobody is judged on it (honest miners need
  the chain to learn the window and could not make its deadline).

See protocol/SPEC.md, "Observed arrival".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gauntlet.node.spool import SpooledSealed


@dataclass(frozen=True)
class Seen:
    """One version of a miner's sealed upload as a validator downloaded it."""

    uid: int
    hotkey: str
    etag: str
    block: int  # chain head when this version was first found
    sealed: SpooledSealed | None = None  # None: the object was fetched but failed its checks
    error: str = ""  # why the header failed (signature, window, size, hash)

    @property
    def sha256(self) -> str:
        return self.sealed.sha256 if self.sealed is not None else ""


@dataclass
class WindowArrivals:
    """What one validator observed of one window's sealed uploads."""

    window: int
    deadline_block: int
    close_block: int
    accepted: dict[int, Seen] = field(default_factory=dict)
    late: set[int] = field(default_factory=set)  # uids whose only new version came too late
    faults: dict[int, str] = field(default_factory=dict)  # uid -> last storage error slug
    complete: bool = False
    closed: bool = False
    # The chain was unreachable for part of the upload phase: honest miners could not learn
    # the window or reach its deadline, so nobody is judged on it (never complete).
    spoiled: bool = False

    def settle_round(self, found: dict[int, Seen], started: int, ended: int) -> None:
        """Fold in one poll round's finds (uid -> version), read between heads ``started``
        and ``ended``."""
        if self.closed:
            return
        if ended < self.close_block:
            for uid, seen in found.items():
                old = self.accepted.get(uid)
                same = old is not None and old.etag == seen.etag and old.sha256 == seen.sha256
                self.accepted[uid] = old if same and old is not None else seen
            if started >= self.deadline_block and not self.spoiled:
                self.complete = True
            return
        # An accepted uid that re-uploads after the close keeps its accepted version.
        self.late.update(uid for uid in found if uid not in self.accepted)
        self.closed = True

    def spoil(self) -> None:
        """A chain outage covered part of this window's upload phase: never complete."""
        self.spoiled = True
        self.complete = False

    def close(self) -> None:
        """Close without a final round (the head passed the close while not polling)."""
        self.closed = True
