"""The ``gauntlet`` command: parse the arguments and hand over to the command's handler
(:mod:`gauntlet.commands`), which builds the config and runs it.

Heavy imports (torch, the SDK) happen inside the handlers so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from gauntlet import __version__
from gauntlet.commands import (
    ALL_SECTIONS,
    NODE_SECTIONS,
    cmd_chain_serve,
    cmd_chain_status,
    cmd_config_show,
    cmd_data_prepare,
    cmd_ledger,
    cmd_localnet,
    cmd_miner,
    cmd_model_export,
    cmd_register,
    cmd_rescore,
    cmd_sim_miner,
    cmd_status,
    cmd_validator,
)
from gauntlet.config import ConfigError
from gauntlet.config.flags import add_config_flags


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gauntlet",
        description="Gauntlet: miners train a shared LLM, validators score their contributions on Bittensor.",
    )
    parser.add_argument("--version", action="version", version=f"gauntlet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def node_command(name: str, help_text: str, handler, sections=NODE_SECTIONS):
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_config_flags(p, sections)
        p.set_defaults(handler=handler)
        return p

    node_command(
        "miner", "Run a miner: train on assigned pages, upload signed pseudo-gradients.", cmd_miner
    )
    sim_miner = node_command(
        "sim-miner",
        "A miner with a simulated behaviour (honest or adversarial), for the local subnet only.",
        cmd_sim_miner,
    )
    sim_miner.add_argument(
        "--behaviour", default="honest", help="behaviour name (docs/localnet.md)"
    )
    sim_miner.add_argument(
        "--behaviour-args", default="{}", metavar="JSON", help="behaviour keyword arguments"
    )
    node_command(
        "validator", "Run a validator: score contributions, set weights on chain.", cmd_validator
    )
    node_command(
        "localnet",
        "Run a whole simulated subnet on this machine (chain, store, miners, validators) and report.",
        cmd_localnet,
        ALL_SECTIONS,
    )

    register = sub.add_parser(
        "register",
        help="Register the wallet's hotkey on the subnet (sim chain), or print the btcli commands.",
        description="On the simulated chain (--subtensor.network sim): register the wallet's "
        "hotkey, with --stake for a validator. On finney/test/local: print the btcli commands "
        "that register (and stake) it, to run where the coldkey is.",
    )
    register.add_argument(
        "--stake",
        type=float,
        metavar="TAO",
        help="Stake for the hotkey: set by the sim chain's faucet, or the btcli stake add "
        "amount; a validator needs some for a permit (default: none)",
    )
    add_config_flags(register, ["chain", "wallet"])
    register.set_defaults(handler=cmd_register)

    status = sub.add_parser(
        "status",
        help="Why a uid scores what it scores: every validator's reports and weights on chain.",
        description="For the last --windows windows: each validator's verdict, reason, "
        "evaluation, score and weight for one uid, read from the public window reports in "
        "the validators' buckets, and the weight each validator holds on chain for it.",
    )
    who = status.add_mutually_exclusive_group(required=True)
    who.add_argument("--uid", type=int, help="The uid to explain")
    who.add_argument("--hotkey", help="The hotkey (ss58) to explain")
    status.add_argument(
        "--windows", type=int, default=5, metavar="K", help="Reported windows shown (default: 5)"
    )
    status.add_argument("--json", action="store_true", help="Print JSON instead of a table")
    add_config_flags(status, ["chain", "storage"])
    status.set_defaults(handler=cmd_status)

    _ledger_parser(sub)
    _rescore_parser(sub)

    chain = sub.add_parser(
        "chain", help="The simulated chain service.", description="The simulated chain service."
    )
    chain_sub = chain.add_subparsers(dest="chain_command", required=True, metavar="ACTION")
    serve = chain_sub.add_parser(
        "serve", help="Run the simulated chain (HTTP on loopback, SQLite state)."
    )
    serve.add_argument("--host", default="127.0.0.1", help="Address to bind (default: 127.0.0.1)")
    serve.add_argument(
        "--port", type=int, default=9946, help="Port; 0 picks a free one (default: 9946)"
    )
    serve.add_argument(
        "--db", default="simchain.sqlite", help="SQLite state file (default: simchain.sqlite)"
    )
    serve.add_argument(
        "--block-time",
        type=float,
        help="Seconds per block of a new chain (default: 12.0); an existing --db keeps its own",
    )
    serve.add_argument("--ready-file", help="Write the served URL here once listening")
    serve.add_argument(
        "--hold-until",
        help="Keep a new chain at block 0 until this file exists (the localnet creates it once "
        "every node is up, so slow start-ups cost no windows)",
    )
    serve.add_argument("--tempo", type=int, help="Blocks between epochs (default: 360)")
    serve.add_argument(
        "--weights-rate-limit",
        type=int,
        help="Min blocks between a hotkey's weights (default: 5, under one default window of "
        "10 blocks, so validators that set weights every window are never refused; "
        "subtensor's default is 100)",
    )
    serve.add_argument(
        "--max-uids", type=int, help="Subnet size before registration replaces (default: 256)"
    )
    serve.add_argument(
        "--max-validators", type=int, help="Validator permits, top stake (default: 64)"
    )
    serve.add_argument(
        "--immunity-period", type=int, help="Blocks a new neuron cannot be replaced (default: 5000)"
    )
    serve.add_argument(
        "--commitment-max-bytes",
        type=int,
        help="Longest commitment, in bytes, a hotkey may post (default: 1024)",
    )
    serve.set_defaults(handler=cmd_chain_serve)
    chain_status = chain_sub.add_parser(
        "status", help="Print the metagraph with incentive per uid."
    )
    add_config_flags(chain_status, ["chain"])
    chain_status.set_defaults(handler=cmd_chain_status)

    data = sub.add_parser("data", help="Dataset preparation.", description="Dataset preparation.")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    prepare = data_sub.add_parser(
        "prepare",
        help="Tokenise local text into page shards (default: this machine's Python stdlib).",
    )
    prepare.add_argument(
        "--source",
        action="append",
        help="Text, JSONL or Parquet file, or a directory of them (repeatable)",
    )
    prepare.add_argument("--tokenizer", help="A Hugging Face tokenizer.json (default: byte-level)")
    prepare.add_argument(
        "--eos-token", help="End-of-document token of --tokenizer (default: auto-detected)"
    )
    prepare.add_argument(
        "--text-field", default="text", help="JSONL field / Parquet column (default: text)"
    )
    prepare.add_argument(
        "--shard-bytes",
        type=int,
        default=64 * 2**20,
        help="Maximum bytes per shard file (default: 64 MiB)",
    )
    add_config_flags(prepare, ["data"])
    prepare.set_defaults(handler=cmd_data_prepare)

    model = sub.add_parser("model", help="Model utilities.", description="Model utilities.")
    model_sub = model.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    export = model_sub.add_parser(
        "export",
        help="Write a Hugging Face LlamaForCausalLM directory (config.json + safetensors).",
    )
    export.add_argument("--model", default="tiny", help="Named model config (default: tiny)")
    export.add_argument(
        "--checkpoint", help="A safetensors state dict of that config (default: seeded init)"
    )
    export.add_argument("--out", required=True, help="Output directory")
    export.add_argument(
        "--dtype",
        choices=["float32", "bfloat16", "float16"],
        default="float32",
        help="Tensor dtype of model.safetensors (default: float32; bfloat16 halves the size)",
    )
    export.add_argument(
        "--tokenizer",
        help="The dataset's tokenizer.json to ship with the model (default: the byte "
        "tokenizer, for models with a 256-token vocabulary)",
    )
    export.set_defaults(handler=cmd_model_export)

    config = sub.add_parser(
        "config", help="Inspect configuration.", description="Inspect configuration."
    )
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    show = config_sub.add_parser(
        "show", help="Print the effective config (defaults < file < env < flags)."
    )
    add_config_flags(show, ALL_SECTIONS)
    show.set_defaults(handler=cmd_config_show)
    return parser


def _ledger_parser(sub) -> None:
    ledger = sub.add_parser(
        "ledger",
        help="Who built the model: verify the lead's chain of aggregation records and credit "
        "each hotkey (docs/ledger.md).",
        description="Verify the contribution ledger (the lead's hash-linked, signed "
        "aggregation records) from the lead's latest record, a checkpoint, or a downloaded "
        "checkpoint manifest back to the first record (or --from-window), then print per "
        "hotkey the windows its update was aggregated in, its share of each, the validation "
        "loss improvement credited to it and totals. Any fault is one line naming the window.",
    )
    start = ledger.add_mutually_exclusive_group()
    start.add_argument(
        "--checkpoint-window", type=int, metavar="W", help="Start from the lead's checkpoint of W"
    )
    start.add_argument("--manifest", metavar="FILE", help="Start from a checkpoint manifest file")
    ledger.add_argument(
        "--model-file",
        metavar="FILE",
        help="A model.safetensors to check: against the checkpoint given, or else traced to "
        "the record that leads to it",
    )
    ledger.add_argument(
        "--lead",
        metavar="HOTKEY",
        help="Whose records and checkpoint (default: the chain's lead now; with --stores, the "
        "newest record's or the checkpoint's signer)",
    )
    ledger.add_argument("--from-window", type=int, metavar="W", help="Verify back to window W only")
    ledger.add_argument(
        "--check-payloads",
        action="store_true",
        help="Also fetch every recorded payload its author still stores and check its sha256",
    )
    ledger.add_argument(
        "--stores",
        action="append",
        metavar="DIR",
        help="Read filesystem buckets here instead of the chain's commitments: a bucket "
        "directory or a directory of them, e.g. a localnet run's stores/ (repeatable)",
    )
    output = ledger.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="Print JSON")
    output.add_argument("--csv", action="store_true", help="Print one CSV row per contribution")
    add_config_flags(ledger, ["chain", "storage"])
    ledger.set_defaults(handler=cmd_ledger)


def _rescore_parser(sub) -> None:
    rescore = sub.add_parser(
        "rescore",
        help="Replay a validator's journal under other scoring settings (docs/validator.md).",
        description="Feed a validator's journal (state/validator-HOTKEY.jsonl) through scoring "
        "again under the scoring settings given (--config, GAUNTLET_SCORING_*, --scoring.*) "
        "and print, per uid, its share of the weights over the journal and its final weight, "
        "as reported and as replayed. Under the settings the validator ran with the two agree "
        "(largest weight difference 0).",
    )
    rescore.add_argument("journal", metavar="JOURNAL", help="A validator's journal (.jsonl)")
    rescore.add_argument("--json", action="store_true", help="Print JSON instead of a table")
    add_config_flags(rescore, ["scoring"])
    rescore.set_defaults(handler=cmd_rescore)


def main(argv: Sequence[str] | None = None) -> int:
    return _dispatch(build_parser().parse_args(argv))


def _dispatch(args: argparse.Namespace) -> int:
    try:
        return int(args.handler(args) or 0)
    except ConfigError as exc:
        print(f"gauntlet: invalid configuration: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`gauntlet rescore ... | head`): no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nor at exit's flush
        return 1


_NODE_COMMANDS = (cmd_miner, cmd_sim_miner, cmd_validator)


def entry() -> None:
    """The ``gauntlet`` executable: :func:`main`; a node command ends without the
    interpreter's teardown (:func:`~gauntlet.node.lifecycle.exit_without_teardown`)."""
    args = build_parser().parse_args()
    code = _dispatch(args)
    if args.handler in _NODE_COMMANDS:
        from gauntlet.node.lifecycle import exit_without_teardown

        exit_without_teardown(code)
    sys.exit(code)


if __name__ == "__main__":
    entry()
