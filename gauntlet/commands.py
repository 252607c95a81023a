"""What each ``gauntlet`` command does, given its parsed arguments (:mod:`gauntlet.cli`
parses them and dispatches here).

Heavy imports (torch, the SDK) happen inside the handlers so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from gauntlet.config import GauntletConfig, dump_config, load_config
from gauntlet.config.flags import overrides_from_args

NODE_SECTIONS = [
    "chain", "wallet", "storage", "model", "compress", "data", "train", "validator", "scoring", "node",
    "telemetry",
]  # fmt: skip
ALL_SECTIONS = [*NODE_SECTIONS, "localnet"]
# `chain serve`'s weights rate limit: below one default window (chain.blocks_per_window 10
# x validator.weights_interval 1), so a hand-run validator is not refused every window.
SIM_WEIGHTS_RATE_LIMIT = 5


def _config(args: argparse.Namespace) -> GauntletConfig:
    return load_config(args.config, overrides_from_args(args))


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


def _run_node(runner: Callable[[GauntletConfig], Awaitable[None]], args: argparse.Namespace) -> int:
    config = _config(args)
    _setup_logging(config.node.log_level)
    from gauntlet.node.lifecycle import run_until_signalled

    return run_until_signalled(runner, config)


def cmd_miner(args: argparse.Namespace) -> int:
    from gauntlet.node.miner import run_miner

    return _run_node(run_miner, args)


def cmd_sim_miner(args: argparse.Namespace) -> int:
    import json

    from gauntlet.localnet.behaviours import make_behaviour
    from gauntlet.node.miner import run_miner

    try:
        behaviour = make_behaviour(args.behaviour, json.loads(args.behaviour_args))
    except (ValueError, json.JSONDecodeError) as exc:
        print(f"gauntlet sim-miner: {exc}", file=sys.stderr)
        return 2
    return _run_node(lambda config: run_miner(config, behaviour), args)


def cmd_validator(args: argparse.Namespace) -> int:
    from gauntlet.node.validator import run_validator

    return _run_node(run_validator, args)


def cmd_localnet(args: argparse.Namespace) -> int:
    config = _config(args)
    _setup_logging("WARNING")
    from gauntlet.localnet.orchestrator import run_localnet

    return run_localnet(config, config_file=args.config)


def cmd_chain_serve(args: argparse.Namespace) -> int:
    _setup_logging("INFO")
    from dataclasses import asdict

    from gauntlet.chain.sim.server import run_serve
    from gauntlet.chain.sim.state import DEFAULT_HYPERPARAMETERS

    # Every subnet hyperparameter the service keeps has a flag (None: the service's default),
    # so a new one reaches the service by its flag alone.
    subnet = {name: getattr(args, name) for name in asdict(DEFAULT_HYPERPARAMETERS)}
    if subnet["weights_rate_limit"] is None:
        subnet["weights_rate_limit"] = SIM_WEIGHTS_RATE_LIMIT
    run_serve(
        host=args.host,
        port=args.port,
        db_path=Path(args.db),
        block_time=args.block_time,
        ready_file=Path(args.ready_file) if args.ready_file else None,
        hold_until=Path(args.hold_until) if args.hold_until else None,
        **subnet,
    )
    return 0


def cmd_chain_status(args: argparse.Namespace) -> int:
    config = _config(args)
    from gauntlet.chain.sim.status import render_status

    print(asyncio.run(render_status(config.chain.endpoint, config.chain.netuid)))
    return 0


def cmd_register(args: argparse.Namespace) -> int:
    config = _config(args)
    from gauntlet.node import registration

    if config.chain.network != "sim":
        print(registration.btcli_instructions(config, args.stake))
        return 0
    from gauntlet.chain.base import ChainError
    from gauntlet.node.identity import WalletError

    try:
        done = asyncio.run(registration.register_on_sim(config, args.stake))
    except (ChainError, WalletError) as exc:
        print(f"gauntlet register: {exc}", file=sys.stderr)
        return 1
    print(done.line(config))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    config = _config(args)
    from gauntlet.chain.base import ChainError
    from gauntlet.node.status_fetch import StatusError, fetch_status
    from gauntlet.node.status_report import format_status

    try:
        status = asyncio.run(
            fetch_status(config, uid=args.uid, hotkey=args.hotkey, windows=args.windows)
        )
    except (ChainError, StatusError) as exc:
        print(f"gauntlet status: {exc}", file=sys.stderr)
        return 1
    print(status.model_dump_json(indent=2) if args.json else format_status(status))
    return 0


def cmd_ledger(args: argparse.Namespace) -> int:
    config = _config(args)
    from gauntlet.chain.base import ChainError
    from gauntlet.ledger.fetch import LedgerOptions, build_ledger
    from gauntlet.ledger.report import as_csv, as_json, as_text
    from gauntlet.ledger.verify import LedgerError
    from gauntlet.storage.base import StorageError

    options = LedgerOptions(
        lead=args.lead,
        checkpoint_window=args.checkpoint_window,
        manifest=Path(args.manifest) if args.manifest else None,
        model_file=Path(args.model_file) if args.model_file else None,
        from_window=args.from_window,
        check_payloads=args.check_payloads,
        stores=[Path(s) for s in args.stores or []],
    )
    try:
        result = asyncio.run(build_ledger(config, options))
    except LedgerError as exc:
        print(f"gauntlet ledger: {exc}", file=sys.stderr)
        return 1
    except (ChainError, StorageError, OSError) as exc:
        print(f"gauntlet ledger: cannot read the ledger: {exc}", file=sys.stderr)
        return 1
    print(as_json(result) if args.json else as_csv(result) if args.csv else as_text(result))
    return 0


def cmd_data_prepare(args: argparse.Namespace) -> int:
    config = _config(args)
    from gauntlet.data import DatasetError, prepare_from_cli

    def capped(cap) -> None:  # the corpus is larger than --data.max_tokens: say so
        print(f"gauntlet data prepare: {cap.message()}", file=sys.stderr)

    try:
        manifest = prepare_from_cli(
            [Path(s) for s in args.source or []],
            Path(config.data.dataset_dir).expanduser(),
            tokenizer=Path(args.tokenizer) if args.tokenizer else None,
            eos_token=args.eos_token,
            text_field=args.text_field,
            page_tokens=config.data.page_tokens,
            max_tokens=config.data.max_tokens or None,
            shard_bytes=args.shard_bytes,
            on_cap=capped,
        )
    except (DatasetError, OSError) as exc:
        print(f"gauntlet data prepare: {exc}", file=sys.stderr)
        return 2
    print(manifest.model_dump_json(indent=2))
    return 0


def cmd_model_export(args: argparse.Namespace) -> int:
    from gauntlet.model.export import EXPORT_DTYPES, export_cli

    out = export_cli(
        args.model,
        Path(args.checkpoint) if args.checkpoint else None,
        Path(args.out),
        dtype=EXPORT_DTYPES[args.dtype],
        tokenizer=Path(args.tokenizer) if args.tokenizer else None,
    )
    has_tokenizer = (out / "tokenizer.json").exists()
    print(f"exported {args.model} ({args.dtype}) to {out}" + ("" if has_tokenizer else
          "; no tokenizer written: pass --tokenizer with the dataset's tokenizer.json"))  # fmt: skip
    return 0


def cmd_rescore(args: argparse.Namespace) -> int:
    import json

    from gauntlet.node.journal_replay import rescore, rescore_table

    try:
        result = rescore(Path(args.journal), _config(args).scoring)
    except (OSError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        print(f"gauntlet rescore: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=1) if args.json else rescore_table(result))
    return 0


def cmd_config_show(args: argparse.Namespace) -> int:
    print(dump_config(_config(args)))
    return 0
