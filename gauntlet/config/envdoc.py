"""Render ``.env.example`` and docs/configuration.md from the schema, so both list every setting.

``python -m gauntlet.config.envdoc > .env.example`` and
``python -m gauntlet.config.envdoc --markdown > docs/configuration.md``; a test checks both are current.
"""

from __future__ import annotations

import json

from pydantic import BaseModel

from gauntlet.config.loader import CONFIG_FILE_ENV, ENV_PREFIX
from gauntlet.config.schema import GauntletConfig


def _env_value(default: object) -> str:
    """How the default is written in an environment variable (JSON for collections)."""
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, dict | list):
        return json.dumps(default, separators=(",", ":"))
    return str(default)


def render_env_example() -> str:
    lines = [
        "# Gauntlet settings as environment variables: GAUNTLET_<SECTION>__<FIELD>.",
        "# Every setting is listed with its default, commented out; uncomment to override.",
        "# Priority: command-line flags > these variables > config file > defaults.",
        "",
        "# Path of a TOML or JSON config file.",
        f"# {CONFIG_FILE_ENV}=",
    ]
    for section, info in GauntletConfig.model_fields.items():
        model: type[BaseModel] = info.annotation  # type: ignore[assignment]
        lines += ["", f"# --- {section} ---"]
        for name, field in model.model_fields.items():
            value = _env_value(field.get_default(call_default_factory=True))
            lines.append(f"# {field.description}")
            lines.append(f"# {ENV_PREFIX}{section.upper()}__{name.upper()}={value}")
    return "\n".join(lines) + "\n"


def render_markdown() -> str:
    """docs/configuration.md: every setting with its flag, variable, default and meaning."""
    lines = [
        "# Configuration",
        "",
        "One schema (`gauntlet/config/schema.py`) holds every setting. Sources, lowest to",
        "highest priority: defaults, a TOML or JSON file (`--config FILE` or `GAUNTLET_CONFIG`),",
        "environment variables, command-line flags. Unknown keys are errors in every source.",
        "`gauntlet config show` prints the effective configuration.",
        "",
        "Aliases for Bittensor habits: `--netuid` = `--chain.netuid`, `--subtensor.network` =",
        "`--chain.network`, `--subtensor.chain_endpoint` = `--chain.endpoint`.",
        "",
        "This page is generated: `python -m gauntlet.config.envdoc --markdown > docs/configuration.md`.",
    ]
    for section, info in GauntletConfig.model_fields.items():
        model: type[BaseModel] = info.annotation  # type: ignore[assignment]
        lines += [
            "",
            f"## `{section}`",
            "",
            "| flag | environment variable | default | meaning |",
            "| --- | --- | --- | --- |",
        ]
        for name, field in model.model_fields.items():
            env = f"{ENV_PREFIX}{section.upper()}__{name.upper()}"
            lines.append(
                f"| `--{section}.{name}` | `{env}` | `{field.default!r}` | {field.description} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    print(render_markdown() if "--markdown" in sys.argv else render_env_example(), end="")
