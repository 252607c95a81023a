"""Typed configuration: one schema, layered sources."""

from gauntlet.config.loader import ConfigError, dump_config, load_config
from gauntlet.config.schema import GauntletConfig

__all__ = ["ConfigError", "GauntletConfig", "dump_config", "load_config"]
