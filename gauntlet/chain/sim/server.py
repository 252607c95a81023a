"""The simulated chain as an HTTP/JSON service on loopback (aiohttp over :class:`ChainState`).

Reads are open; writes carry a signed envelope (see :mod:`gauntlet.chain.sim.wire`).
Errors come back as ``{"error": reason_slug, "message": ...}`` with an HTTP status, and
:class:`~gauntlet.chain.sim.client.SimChainClient` raises the matching typed error.

Run it with ``python -m gauntlet.chain.sim.server --db chain.sqlite --port 0 --ready-file F``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from gauntlet.chain.base import ChainError, Metagraph
from gauntlet.chain.sim.clock import SystemClock
from gauntlet.chain.sim.errors import HTTP_STATUS, BadRequest
from gauntlet.chain.sim.state import DEFAULT_HYPERPARAMETERS, ChainState
from gauntlet.chain.sim.wire import (
    MAX_BODY_BYTES,
    CommitBody,
    Envelope,
    RegisterBody,
    SetWeightsBody,
    open_envelope,
)

log = logging.getLogger(__name__)
DEFAULT_BLOCK_TIME = 12.0  # seconds, as on finney
STATE: web.AppKey[ChainState] = web.AppKey("state", ChainState)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(reason: str, message: str, status: int) -> web.Response:
    return web.json_response({"error": reason, "message": message}, status=status)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn typed chain errors and bad input into JSON errors; let real bugs surface as 500."""
    try:
        return await handler(request)
    except ChainError as exc:
        return _error(exc.reason, str(exc), HTTP_STATUS.get(exc.reason, 400))
    except ValidationError as exc:
        return _error(BadRequest.reason, str(exc), 400)
    except web.HTTPRequestEntityTooLarge:
        return _error(BadRequest.reason, f"request body over {MAX_BODY_BYTES} bytes", 413)


def _int_query(request: web.Request, name: str, default: int | None = None) -> int:
    raw = request.query.get(name)
    if raw is None:
        if default is None:
            raise BadRequest(f"query parameter {name!r} is required")
        return default
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"query parameter {name!r} must be an integer, got {raw!r}") from None


async def _signed(request: web.Request, model: type[BaseModel]) -> tuple[str, Any]:
    """Verify the envelope and nonce; return (hotkey, parsed body)."""
    try:
        raw = json.loads(await request.read())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest("request body is not JSON") from None
    envelope = Envelope.model_validate(raw)
    open_envelope(request.path, envelope)
    body = model.model_validate(envelope.body)
    # After the signature: an attacker must not be able to burn someone else's nonces.
    request.app[STATE].accept_nonce(envelope.hotkey, envelope.nonce)
    return envelope.hotkey, body


def metagraph_json(mg: Metagraph) -> dict[str, Any]:
    return {
        "netuid": mg.netuid,
        "block": mg.block,
        "neurons": [asdict(n) for n in mg.neurons],
        "weights": {str(v): {str(m): w for m, w in row.items()} for v, row in mg.weights.items()},
    }


async def health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def block(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response(
        {"block": state.block(), "block_time": state.block_time, "genesis_time": state.genesis_time}
    )


async def block_timestamp(request: web.Request) -> web.Response:
    n = _int_query(request, "block")
    return web.json_response({"block": n, "timestamp": request.app[STATE].block_timestamp(n)})


async def metagraph(request: web.Request) -> web.Response:
    mg = request.app[STATE].metagraph(_int_query(request, "netuid"))
    return web.json_response(metagraph_json(mg))


async def hyperparameters(request: web.Request) -> web.Response:
    params = request.app[STATE].hyperparameters(_int_query(request, "netuid"))
    return web.json_response(asdict(params))


async def commitments(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].commitments(_int_query(request, "netuid")))


async def events(request: web.Request) -> web.Response:
    netuid = request.query.get("netuid")
    found = request.app[STATE].events(
        after=_int_query(request, "after", 0),
        netuid=_int_query(request, "netuid") if netuid is not None else None,
    )
    return web.json_response([asdict(e) for e in found])


async def register(request: web.Request) -> web.Response:
    hotkey, body = await _signed(request, RegisterBody)
    stake = None if body.stake is None else float(body.stake)
    uid = request.app[STATE].register(body.netuid, hotkey, coldkey=body.coldkey, stake=stake)
    return web.json_response({"uid": uid})


async def commit(request: web.Request) -> web.Response:
    hotkey, body = await _signed(request, CommitBody)
    request.app[STATE].commit(body.netuid, hotkey, body.data)
    return web.json_response({"ok": True})


async def set_weights(request: web.Request) -> web.Response:
    hotkey, body = await _signed(request, SetWeightsBody)
    weights = [float(w) for w in body.weights]
    request.app[STATE].set_weights(body.netuid, hotkey, body.uids, weights)
    return web.json_response({"ok": True})


def build_app(state: ChainState) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[_errors])
    app[STATE] = state
    app.router.add_get("/health", health)
    app.router.add_get("/block", block)
    app.router.add_get("/block_timestamp", block_timestamp)
    app.router.add_get("/metagraph", metagraph)
    app.router.add_get("/hyperparameters", hyperparameters)
    app.router.add_get("/commitments", commitments)
    app.router.add_get("/events", events)
    app.router.add_post("/register", register)
    app.router.add_post("/commit", commit)
    app.router.add_post("/set_weights", set_weights)
    return app


def _write_ready(path: Path, url: str) -> None:
    # Atomic: a parent polling for the file never reads half a URL.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(url + "\n")
    os.replace(tmp, path)


async def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    db_path: Path,
    block_time: float | None = None,
    tempo: int | None = None,
    weights_rate_limit: int | None = None,
    max_uids: int | None = None,
    immunity_period: int | None = None,
    max_validators: int | None = None,
    commitment_max_bytes: int | None = None,
    ready_file: Path | None = None,
    hold_until: Path | None = None,
) -> None:
    """Serve until cancelled or SIGTERM/SIGINT. ``port=0`` binds a free port.

    Hyperparameter overrides apply to subnets created from now on; an existing subnet
    keeps the parameters stored when it was created. A reopened chain keeps its block time
    (``None``: the stored one, or :data:`DEFAULT_BLOCK_TIME` for a new chain); another one
    asked for is ignored with a warning. The actual URL (``http://host:port``) is written to
    ``ready_file`` once listening. A new chain given ``hold_until`` stays at block 0 until
    that file exists (the localnet creates it once every node is up).
    """
    overrides = {
        "tempo": tempo,
        "weights_rate_limit": weights_rate_limit,
        "max_uids": max_uids,
        "immunity_period": immunity_period,
        "max_validators": max_validators,
        "commitment_max_bytes": commitment_max_bytes,
    }
    defaults = replace(
        DEFAULT_HYPERPARAMETERS, **{k: v for k, v in overrides.items() if v is not None}
    )
    asked = DEFAULT_BLOCK_TIME if block_time is None else block_time
    held = (lambda: not hold_until.exists()) if hold_until is not None else None
    state = ChainState(db_path, SystemClock(), block_time=asked, defaults=defaults, held=held)
    if block_time is not None and state.block_time != block_time:
        log.warning(
            "%s already holds a chain with %gs blocks: --block-time %g is ignored (block numbers "
            "would jump); start a new --db for another block time",
            db_path, state.block_time, block_time,
        )  # fmt: skip
    runner = web.AppRunner(build_app(state), access_log=None)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        # Only possible in the main thread; elsewhere cancellation is the way to stop.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        url = f"http://{bound_host}:{bound_port}"
        log.info("simulated chain at %s (db %s, block %.3fs)", url, db_path, state.block_time)
        if ready_file is not None:
            _write_ready(ready_file, url)
        await stop.wait()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        await runner.cleanup()
        state.close()


def run_serve(**kwargs: Any) -> None:
    """Blocking :func:`serve` for the CLI; takes the same keyword arguments."""
    asyncio.run(serve(**kwargs))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Run the simulated chain service.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 binds a free port")
    p.add_argument("--db", type=Path, required=True, help="SQLite file (created if missing)")
    p.add_argument("--block-time", type=float, help="seconds per block of a new chain")
    p.add_argument("--ready-file", type=Path, help="write the service URL here when listening")
    p.add_argument("--hold-until", type=Path, help="a new chain stays at block 0 until this exists")
    for name in asdict(DEFAULT_HYPERPARAMETERS):
        p.add_argument(f"--{name.replace('_', '-')}", type=int, help="subnet default override")
    args = vars(p.parse_args(argv))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run_serve(db_path=args.pop("db"), **args)


if __name__ == "__main__":
    main()
