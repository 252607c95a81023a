"""Build a :class:`GauntletConfig` from defaults, a file, the environment and flags.

pydantic-settings does the layering: flags (init values) > ``GAUNTLET_*``
environment variables > the config file > defaults. We add what it leaves out:
``GAUNTLET_*`` variables that name no setting are errors, like unknown keys.
"""

from __future__ import annotations

import json
import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    JsonConfigSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from gauntlet.config.schema import GauntletConfig

ENV_PREFIX = "GAUNTLET_"
CONFIG_FILE_ENV = "GAUNTLET_CONFIG"  # path of a config file
CRASH_ENV = "GAUNTLET_CRASH_AT"  # fault injection for chaos tests (gauntlet/node/crash_points.py)
NON_SETTING_ENV = frozenset({CONFIG_FILE_ENV, CRASH_ENV})  # the only non-setting variables
_config_file: ContextVar[Path | None] = ContextVar("gauntlet_config_file", default=None)
_environ: ContextVar[dict[str, str] | None] = ContextVar("gauntlet_environ", default=None)


class ConfigError(ValueError):
    """The configuration is invalid; the message says which key and why."""


class _MappingEnvSource(EnvSettingsSource):
    """Reads an explicit mapping instead of ``os.environ`` (tests, and no global mutation)."""

    def _load_env_vars(self) -> dict[str, str | None]:  # type: ignore[override]
        return {key.lower(): value for key, value in (_environ.get() or {}).items()}


class _Settings(GauntletConfig, BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", case_sensitive=False
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, _MappingEnvSource(settings_cls)]
        path = _config_file.get()
        if path is not None:
            if path.suffix == ".toml":
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
            else:
                sources.append(JsonConfigSettingsSource(settings_cls, json_file=path))
        return tuple(sources)


def _check_env(environ: dict[str, str]) -> None:
    sections = GauntletConfig.model_fields
    for name in environ:
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper in NON_SETTING_ENV:
            continue
        parts = upper[len(ENV_PREFIX) :].lower().split("__")
        section = sections.get(parts[0]) if parts else None
        annotation = section.annotation if section else None
        fields = getattr(annotation, "model_fields", {})
        if len(parts) != 2 or parts[1] not in fields:
            raise ConfigError(f"unknown setting in environment variable {name}")


def load_config(
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> GauntletConfig:
    """The effective config. ``overrides`` is nested: ``{"chain": {"netuid": 3}}``."""
    environ = dict(os.environ) if environ is None else environ
    _check_env(environ)
    path_text = config_file or environ.get(CONFIG_FILE_ENV)
    path = Path(path_text).expanduser() if path_text else None
    if path is not None and not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    file_token, env_token = _config_file.set(path), _environ.set(environ)
    try:
        settings = _Settings(**(overrides or {}))
    except ValueError as exc:  # pydantic.ValidationError, TOML/JSON decode errors
        raise ConfigError(str(exc)) from None
    finally:
        _config_file.reset(file_token)
        _environ.reset(env_token)
    return GauntletConfig.model_validate(settings.model_dump())


def dump_config(config: GauntletConfig) -> str:
    """The effective config as JSON (secrets masked), for ``gauntlet config show``."""
    data = config.model_dump()
    for section, name in secret_fields():
        if data[section][name]:
            data[section][name] = "***"
    return json.dumps(data, indent=2)


def secret_fields() -> list[tuple[str, str]]:
    """(section, field) of every setting marked secret in the schema."""
    found = []
    for section, info in GauntletConfig.model_fields.items():
        model = info.annotation
        assert model is not None
        for name, field in model.model_fields.items():  # type: ignore[attr-defined]
            if isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get("secret"):
                found.append((section, name))
    return found
