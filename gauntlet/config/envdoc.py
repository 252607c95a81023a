"""Render ``.env.example`` from the schema, so it always lists every setting.

``python -m gauntlet.config.envdoc > .env.example``; a test checks the file is current.
"""

from __future__ import annotations

from pydantic import BaseModel

from gauntlet.config.loader import CONFIG_FILE_ENV, ENV_PREFIX
from gauntlet.config.schema import GauntletConfig


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
            default = field.default
            value = str(default).lower() if isinstance(default, bool) else default
            lines.append(f"# {field.description}")
            lines.append(f"# {ENV_PREFIX}{section.upper()}__{name.upper()}={value}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_env_example(), end="")
