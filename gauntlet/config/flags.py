"""Command-line flags generated from the schema: ``--section.field``, help from each description.

Also the aliases Bittensor operators type by habit: ``--netuid``,
``--subtensor.network`` and ``--subtensor.chain_endpoint``.
"""

from __future__ import annotations

import argparse
import json
import typing
from typing import Any, Literal

from pydantic import BaseModel

from gauntlet.config.schema import GauntletConfig

ALIASES = {
    "chain.netuid": ["--netuid"],
    "chain.network": ["--subtensor.network"],
    "chain.endpoint": ["--subtensor.chain_endpoint"],
}


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def _argument(annotation: Any) -> dict[str, Any]:
    if typing.get_origin(annotation) is Literal:
        return {"choices": list(typing.get_args(annotation))}
    if typing.get_origin(annotation) is dict:
        return {"type": json.loads, "metavar": "JSON"}
    if annotation is bool:
        return {"type": _parse_bool, "metavar": "BOOL"}
    if annotation is int:
        return {"type": int, "metavar": "INT"}
    if annotation is float:
        return {"type": float, "metavar": "FLOAT"}
    return {"type": str, "metavar": "TEXT"}


def add_config_flags(parser: argparse.ArgumentParser, sections: list[str]) -> None:
    """One flag per field of each named section; values land in ``args.<section>.<field>``."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="TOML or JSON config file (also GAUNTLET_CONFIG); flags and GAUNTLET_* variables override it",
    )
    for section in sections:
        model: type[BaseModel] = GauntletConfig.model_fields[section].annotation  # type: ignore[assignment]
        group = parser.add_argument_group(
            f"{section} settings (env GAUNTLET_{section.upper()}__<FIELD>)"
        )
        for name, field in model.model_fields.items():
            dest = f"{section}.{name}"
            group.add_argument(
                f"--{dest}",
                *ALIASES.get(dest, []),
                dest=dest,
                default=argparse.SUPPRESS,
                help=f"{field.description} (default: {field.get_default(call_default_factory=True)!r})",
                **_argument(field.annotation),
            )


def overrides_from_args(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The flags actually given, as the nested dict ``load_config`` takes."""
    nested: dict[str, dict[str, Any]] = {}
    for dest, value in vars(args).items():
        if "." in dest:
            section, name = dest.split(".", 1)
            nested.setdefault(section, {})[name] = value
    return nested
