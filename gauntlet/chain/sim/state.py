"""Simulated chain state in one SQLite file (WAL), with the chain's rules.

Everything lives in the database, including the block clock's genesis time and block
time, so stopping the service and starting it again on the same file resumes the same
chain. Stored values win over constructor arguments on reopen: changing the block time of
a running chain would make block numbers jump.

Simplifications versus subtensor (each documented where it is applied):

* Stake is per hotkey, set by a *sim-only faucet* (``register(stake=...)``); emission is
  reported per epoch but never added to stake.
* Validator permits are computed on read (top ``max_validators`` by stake, stake > 0),
  not frozen at epochs, so a freshly staked validator can set weights at once.
* Epochs run lazily: every call first runs the epoch for any tempo boundary that has
  passed. Several missed boundaries collapse into one epoch (the inputs did not change in
  between, so each would compute the same result).
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gauntlet.chain.base import (
    Hyperparameters,
    Metagraph,
    Neuron,
    NotRegistered,
    NoValidatorPermit,
    RateLimited,
    Unauthorized,
)
from gauntlet.chain.sim import yuma
from gauntlet.chain.sim.clock import Clock, block_at
from gauntlet.chain.sim.errors import BadRequest, CommitmentTooLarge, SubnetFull
from gauntlet.chain.sim.weights import check_weights, quantise_u16
from protocol.commitment import MAX_COMMITMENT_BYTES

MAX_NONCE = 2**63 - 1  # SQLite INTEGER range

# Chain-like defaults; localnet and tests override them (serve(..., tempo=...)).
DEFAULT_HYPERPARAMETERS = Hyperparameters(
    tempo=360,
    weights_rate_limit=100,
    max_uids=256,
    immunity_period=5000,
    max_validators=64,
    commitment_max_bytes=MAX_COMMITMENT_BYTES,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS subnets (
    netuid INTEGER PRIMARY KEY, params TEXT NOT NULL,
    created_at INTEGER NOT NULL, last_epoch INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS neurons (
    netuid INTEGER NOT NULL, uid INTEGER NOT NULL, hotkey TEXT NOT NULL, coldkey TEXT NOT NULL,
    registered_at INTEGER NOT NULL, weights_at INTEGER,
    incentive REAL NOT NULL DEFAULT 0, dividends REAL NOT NULL DEFAULT 0,
    emission REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (netuid, uid), UNIQUE (netuid, hotkey));
CREATE TABLE IF NOT EXISTS stakes (hotkey TEXT PRIMARY KEY, stake REAL NOT NULL);
CREATE TABLE IF NOT EXISTS weights (
    netuid INTEGER NOT NULL, validator_uid INTEGER NOT NULL, miner_uid INTEGER NOT NULL,
    value INTEGER NOT NULL, PRIMARY KEY (netuid, validator_uid, miner_uid));
CREATE TABLE IF NOT EXISTS commitments (
    netuid INTEGER NOT NULL, hotkey TEXT NOT NULL, data TEXT NOT NULL, block INTEGER NOT NULL,
    PRIMARY KEY (netuid, hotkey));
CREATE TABLE IF NOT EXISTS nonces (hotkey TEXT PRIMARY KEY, nonce INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, block INTEGER NOT NULL, netuid INTEGER NOT NULL,
    kind TEXT NOT NULL, hotkey TEXT, data TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Event:
    id: int
    block: int
    netuid: int
    kind: str  # register | commit | set_weights | epoch
    hotkey: str | None
    data: dict[str, Any]


class ChainState:
    """The rules of one simulated chain (all its subnets) over a SQLite file.

    Not thread-safe: the server calls it from its single event-loop thread.
    """

    def __init__(
        self,
        db_path: Path | str,
        clock: Clock,
        *,
        block_time: float = 12.0,
        defaults: Hyperparameters = DEFAULT_HYPERPARAMETERS,
        held: Callable[[], bool] | None = None,
    ) -> None:
        """``held``, while it answers True, keeps a new chain at block 0: its genesis is
        "now" until the hold ends, then stored. The localnet holds its chain until every
        node is up, so a slow machine's start-up costs no windows."""
        if block_time <= 0:
            raise ValueError("block_time must be positive")
        if defaults.tempo < 1 or defaults.max_uids < 1 or min(asdict(defaults).values()) < 0:
            raise ValueError(f"invalid hyperparameters: {defaults}")
        self._clock = clock
        self._defaults = defaults
        self._db = sqlite3.connect(str(db_path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        with self._tx():
            created = self._db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('genesis_time', ?), ('block_time', ?)",
                (repr(clock.now()), repr(block_time)),
            ).rowcount
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        self.genesis_time = float(meta["genesis_time"])
        self.block_time = float(meta["block_time"])
        # Only a new chain is held: a reopened one's blocks must never jump back to 0.
        self._held = held if created else None

    def _hold(self) -> bool:
        """True while the hold lasts. Genesis is the moment the release is first seen (block
        0 starts then, however long since the last call), and is stored then."""
        if self._held is None:
            return False
        self.genesis_time = self._clock.now()
        if self._held():
            return True
        self._held = None
        with self._tx():
            self._db.execute(
                "UPDATE meta SET value = ? WHERE key = 'genesis_time'", (repr(self.genesis_time),)
            )
        return False

    def close(self) -> None:
        self._db.close()

    def _tx(self) -> _Transaction:
        # The connection autocommits (isolation_level=None); writes that must land together
        # go through one explicit transaction so a crash never leaves half a registration.
        return _Transaction(self._db)

    # ---- clock and epochs -------------------------------------------------------------

    def block(self) -> int:
        if self._hold():
            return 0
        return block_at(self._clock.now(), self.genesis_time, self.block_time)

    def block_timestamp(self, block: int) -> float:
        self._hold()
        return self.genesis_time + block * self.block_time

    def _advance(self) -> int:
        """Run any epoch whose boundary has passed; return the current block."""
        block = self.block()
        for netuid, params, last_epoch in self._db.execute(
            "SELECT netuid, params, last_epoch FROM subnets"
        ).fetchall():
            tempo = Hyperparameters(**json.loads(params)).tempo
            due = block // tempo * tempo
            if due > last_epoch:
                self._epoch(netuid, due, tempo, missed=(due - last_epoch) // tempo)
        return block

    def _epoch(self, netuid: int, block: int, tempo: int, missed: int) -> None:
        mg = self._metagraph(netuid, block)
        result = yuma.epoch(
            uids=[n.uid for n in mg.neurons],
            stake={n.uid: n.stake for n in mg.neurons},
            validators={n.uid for n in mg.neurons if n.validator_permit},
            weights=mg.weights,
            total_emission=float(tempo),
        )
        with self._tx():
            for n in mg.neurons:
                self._db.execute(
                    "UPDATE neurons SET incentive=?, dividends=?, emission=? WHERE netuid=? AND uid=?",
                    (
                        result.incentive[n.uid],
                        result.dividends[n.uid],
                        result.emission[n.uid],
                        netuid,
                        n.uid,
                    ),
                )
            self._db.execute("UPDATE subnets SET last_epoch=? WHERE netuid=?", (block, netuid))
            self._log(block, netuid, "epoch", None, {"epochs": missed, **asdict(result)})

    # ---- subnets ------------------------------------------------------------------------

    def hyperparameters(self, netuid: int) -> Hyperparameters:
        """A subnet's parameters; the service defaults for a subnet nobody registered on yet."""
        row = self._db.execute("SELECT params FROM subnets WHERE netuid=?", (netuid,)).fetchone()
        return Hyperparameters(**json.loads(row[0])) if row else self._defaults

    def _ensure_subnet(self, netuid: int, block: int) -> Hyperparameters:
        params = self.hyperparameters(netuid)
        tempo = params.tempo
        self._db.execute(
            "INSERT OR IGNORE INTO subnets VALUES (?, ?, ?, ?)",
            (netuid, json.dumps(asdict(params)), block, block // tempo * tempo),
        )
        return params

    # ---- registration and stake -----------------------------------------------------------

    def register(
        self, netuid: int, hotkey: str, *, coldkey: str | None = None, stake: float | None = None
    ) -> int:
        """Return the hotkey's uid, registering it if needed.

        ``stake`` is the sim-only faucet: when given, it *sets* the hotkey's stake (TAO).
        """
        if stake is not None and not (math.isfinite(stake) and stake >= 0):
            raise BadRequest(f"stake must be a finite non-negative number, got {stake}")
        block = self._advance()
        with self._tx():
            params = self._ensure_subnet(netuid, block)
            if stake is not None:
                self._db.execute("INSERT OR REPLACE INTO stakes VALUES (?, ?)", (hotkey, stake))
            row = self._db.execute(
                "SELECT uid FROM neurons WHERE netuid=? AND hotkey=?", (netuid, hotkey)
            ).fetchone()
            if row:
                return int(row[0])
            uid = self._free_uid(netuid, params, block)
            self._db.execute(
                "INSERT INTO neurons (netuid, uid, hotkey, coldkey, registered_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (netuid, uid, hotkey, coldkey or hotkey, block),
            )
            self._log(block, netuid, "register", hotkey, {"uid": uid, "stake": stake})
            return uid

    def _free_uid(self, netuid: int, params: Hyperparameters, block: int) -> int:
        """Next sequential uid, or the uid of the neuron to replace when the subnet is full."""
        (count,) = self._db.execute(
            "SELECT COUNT(*) FROM neurons WHERE netuid=?", (netuid,)
        ).fetchone()
        if count < params.max_uids:
            return int(count)
        # Lowest incentive outside immunity; the oldest registration breaks ties (as pruning does).
        victim = self._db.execute(
            "SELECT uid, hotkey FROM neurons WHERE netuid=? AND registered_at <= ?"
            " ORDER BY incentive ASC, registered_at ASC, uid ASC LIMIT 1",
            (netuid, block - params.immunity_period),
        ).fetchone()
        if victim is None:
            raise SubnetFull(f"all {params.max_uids} uids are inside their immunity period")
        uid, old_hotkey = int(victim[0]), victim[1]
        # The new neuron inherits nothing: not the old rows of weights, nor weights onto the uid.
        self._db.execute("DELETE FROM neurons WHERE netuid=? AND uid=?", (netuid, uid))
        self._db.execute(
            "DELETE FROM weights WHERE netuid=? AND (validator_uid=? OR miner_uid=?)",
            (netuid, uid, uid),
        )
        self._db.execute(
            "DELETE FROM commitments WHERE netuid=? AND hotkey=?", (netuid, old_hotkey)
        )
        return uid

    def _uid_of(self, netuid: int, hotkey: str) -> int:
        row = self._db.execute(
            "SELECT uid FROM neurons WHERE netuid=? AND hotkey=?", (netuid, hotkey)
        ).fetchone()
        if row is None:
            raise NotRegistered(f"{hotkey} is not registered on netuid {netuid}")
        return int(row[0])

    # ---- commitments --------------------------------------------------------------------

    def commit(self, netuid: int, hotkey: str, data: str) -> None:
        block = self._advance()
        self._uid_of(netuid, hotkey)
        limit = self.hyperparameters(netuid).commitment_max_bytes
        size = len(data.encode())
        if size > limit:
            raise CommitmentTooLarge(f"commitment is {size} bytes, the limit is {limit}")
        with self._tx():
            self._db.execute(
                "INSERT OR REPLACE INTO commitments VALUES (?, ?, ?, ?)",
                (netuid, hotkey, data, block),
            )
            self._log(block, netuid, "commit", hotkey, {"data": data})

    def commitments(self, netuid: int) -> dict[str, str]:
        self._advance()
        rows = self._db.execute(
            "SELECT hotkey, data FROM commitments WHERE netuid=? ORDER BY hotkey", (netuid,)
        ).fetchall()
        return {hotkey: data for hotkey, data in rows}

    # ---- weights ------------------------------------------------------------------------

    def set_weights(
        self, netuid: int, hotkey: str, uids: Sequence[int], weights: Sequence[float]
    ) -> None:
        """Apply the chain's checks in the chain's order, then store u16-quantised weights."""
        block = self._advance()
        uid = self._uid_of(netuid, hotkey)
        mg = self._metagraph(netuid, block)
        me = mg.by_uid(uid)
        assert me is not None
        if not me.validator_permit:
            raise NoValidatorPermit(f"uid {uid} has no validator permit")
        limit = self.hyperparameters(netuid).weights_rate_limit
        (weights_at,) = self._db.execute(
            "SELECT weights_at FROM neurons WHERE netuid=? AND uid=?", (netuid, uid)
        ).fetchone()
        if weights_at is not None and block - weights_at < limit:
            raise RateLimited(
                f"last weights at block {weights_at}; next allowed at {weights_at + limit}"
            )
        check_weights(uids, weights, {n.uid for n in mg.neurons})
        quantised = quantise_u16(weights)
        with self._tx():
            self._db.execute(
                "DELETE FROM weights WHERE netuid=? AND validator_uid=?", (netuid, uid)
            )
            self._db.executemany(
                "INSERT INTO weights VALUES (?, ?, ?, ?)",
                [(netuid, uid, m, q) for m, q in zip(uids, quantised, strict=True) if q > 0],
            )
            self._db.execute(
                "UPDATE neurons SET weights_at=? WHERE netuid=? AND uid=?", (block, netuid, uid)
            )
            self._log(block, netuid, "set_weights", hotkey, {"uids": list(uids), "u16": quantised})

    # ---- reads --------------------------------------------------------------------------

    def metagraph(self, netuid: int) -> Metagraph:
        return self._metagraph(netuid, self._advance())

    def _metagraph(self, netuid: int, block: int) -> Metagraph:
        rows = self._db.execute(
            "SELECT n.uid, n.hotkey, n.coldkey, COALESCE(s.stake, 0), n.registered_at,"
            " COALESCE(n.weights_at, n.registered_at), n.incentive, n.dividends, n.emission"
            " FROM neurons n LEFT JOIN stakes s ON s.hotkey = n.hotkey"
            " WHERE n.netuid=? ORDER BY n.uid",
            (netuid,),
        ).fetchall()
        max_validators = self.hyperparameters(netuid).max_validators
        staked = sorted((r for r in rows if r[3] > 0), key=lambda r: (-r[3], r[0]))
        permitted = {r[0] for r in staked[:max_validators]}
        neurons = tuple(
            Neuron(
                uid=uid,
                hotkey=hotkey,
                coldkey=coldkey,
                stake=stake,
                validator_permit=uid in permitted,
                last_update=last_update,
                incentive=incentive,
                dividends=dividends,
                emission=emission,
                registered_at=registered_at,
            )
            for uid, hotkey, coldkey, stake, registered_at, last_update, incentive, dividends, emission in rows
        )
        raw: dict[int, dict[int, int]] = {}
        for v, m, q in self._db.execute(
            "SELECT validator_uid, miner_uid, value FROM weights WHERE netuid=?", (netuid,)
        ):
            raw.setdefault(v, {})[m] = q
        # Rows normalised to sum 1, as the SDK's metagraph presents W.
        weights = {v: {m: q / sum(row.values()) for m, q in row.items()} for v, row in raw.items()}
        return Metagraph(netuid=netuid, block=block, neurons=neurons, weights=weights)

    # ---- replay protection and events -----------------------------------------------------

    def accept_nonce(self, hotkey: str, nonce: int) -> None:
        """Record ``nonce`` for ``hotkey`` or raise :class:`Unauthorized` if it does not increase."""
        if isinstance(nonce, bool) or not isinstance(nonce, int) or not 0 <= nonce <= MAX_NONCE:
            raise Unauthorized(f"nonce must be an integer in [0, 2^63), got {nonce!r}")
        with self._tx():
            row = self._db.execute("SELECT nonce FROM nonces WHERE hotkey=?", (hotkey,)).fetchone()
            if row is not None and nonce <= row[0]:
                raise Unauthorized(f"nonce {nonce} is not above the last one used ({row[0]})")
            self._db.execute("INSERT OR REPLACE INTO nonces VALUES (?, ?)", (hotkey, nonce))

    def events(
        self, *, after: int = 0, netuid: int | None = None, limit: int = 1000
    ) -> list[Event]:
        self._advance()
        rows = self._db.execute(
            "SELECT id, block, netuid, kind, hotkey, data FROM events"
            " WHERE id > ? AND (? IS NULL OR netuid = ?) ORDER BY id LIMIT ?",
            (after, netuid, netuid, limit),
        ).fetchall()
        return [Event(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]

    def _log(
        self, block: int, netuid: int, kind: str, hotkey: str | None, data: dict[str, Any]
    ) -> None:
        payload = json.dumps(data, sort_keys=True)
        self._db.execute(
            "INSERT INTO events (block, netuid, kind, hotkey, data) VALUES (?, ?, ?, ?, ?)",
            (block, netuid, kind, hotkey, payload),
        )


class _Transaction:
    """``with``: BEGIN IMMEDIATE, COMMIT on success, ROLLBACK on error; nests as a no-op."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._owner = False

    def __enter__(self) -> sqlite3.Connection:
        if not self._db.in_transaction:
            self._db.execute("BEGIN IMMEDIATE")
            self._owner = True
        return self._db

    def __exit__(self, exc_type: object, *_: object) -> None:
        if not self._owner:
            return
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")


__all__ = ["DEFAULT_HYPERPARAMETERS", "ChainState", "Event"]
