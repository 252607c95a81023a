"""The config schema and its sources: defaults < file < environment < flags; unknown keys fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gauntlet.cli import build_parser
from gauntlet.config import ConfigError, load_config
from gauntlet.config.envdoc import render_env_example, render_markdown
from gauntlet.config.flags import overrides_from_args
from gauntlet.config.schema import GauntletConfig

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_need_no_sources() -> None:
    config = load_config(environ={})
    assert config == GauntletConfig()
    assert config.chain.network == "sim"


def test_file_then_environment_then_flags_override_in_that_order(tmp_path: Path) -> None:
    path = tmp_path / "gauntlet.toml"
    path.write_text("[train]\ninner_steps = 5\nbatch_size = 3\n[chain]\nnetuid = 4\n")
    environ = {"GAUNTLET_TRAIN__BATCH_SIZE": "6", "GAUNTLET_CHAIN__NETUID": "7"}
    config = load_config(path, {"chain": {"netuid": 9}}, environ=environ)
    assert (config.train.inner_steps, config.train.batch_size, config.chain.netuid) == (5, 6, 9)


def test_json_config_file_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "gauntlet.json"
    path.write_text(json.dumps({"model": {"seed": 11}}))
    assert load_config(path, environ={}).model.seed == 11


def test_config_file_named_by_environment(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[node]\nmax_windows = 3\n")
    assert load_config(environ={"GAUNTLET_CONFIG": str(path)}).node.max_windows == 3


@pytest.mark.parametrize(
    "text",
    ["[train]\nbogus = 1\n", "[nosuchsection]\nx = 1\n", "top_level = 1\n"],
)
def test_unknown_keys_in_a_file_are_errors(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError):
        load_config(path, environ={})


@pytest.mark.parametrize("name", ["GAUNTLET_TRAIN__BOGUS", "GAUNTLET_NOPE__X", "GAUNTLET_TRAIN"])
def test_unknown_environment_variables_are_errors(name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_config(environ={name: "1"})


def test_invalid_values_are_errors_naming_the_key() -> None:
    with pytest.raises(ConfigError, match="inner_steps"):
        load_config(environ={"GAUNTLET_TRAIN__INNER_STEPS": "-1"})


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.toml", environ={})


def test_bittensor_style_flags_map_onto_the_schema() -> None:
    args = build_parser().parse_args(
        [
            "miner",
            "--netuid",
            "5",
            "--subtensor.network",
            "sim",
            "--wallet.name",
            "cold",
            "--wallet.hotkey",
            "hot",
        ]
    )
    config = load_config(None, overrides_from_args(args), environ={})
    assert (config.chain.netuid, config.wallet.name, config.wallet.hotkey) == (5, "cold", "hot")


def test_boolean_flags_parse_words() -> None:
    args = build_parser().parse_args(["miner", "--storage.path_style", "true"])
    assert load_config(None, overrides_from_args(args), environ={}).storage.path_style is True


def test_env_example_lists_every_setting_and_is_current() -> None:
    assert (ROOT / ".env.example").read_text() == render_env_example()
    for section, info in GauntletConfig.model_fields.items():
        for name in info.annotation.model_fields:  # type: ignore[union-attr]
            assert f"GAUNTLET_{section.upper()}__{name.upper()}=" in render_env_example()


def test_configuration_doc_is_current() -> None:
    assert (ROOT / "docs" / "configuration.md").read_text() == render_markdown()


def test_configuration_doc_shows_real_defaults_not_pydantic_sentinels() -> None:
    text = render_markdown()
    assert "PydanticUndefined" not in text
    assert "`{'late': 0.5" in text  # scoring.penalties, a default_factory
