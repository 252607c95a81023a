"""The ``gauntlet`` command answers --help everywhere and describes every option."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gauntlet.cli import build_parser, main
from gauntlet.config.schema import GauntletConfig

SUBCOMMANDS = [
    ["miner"],
    ["validator"],
    ["localnet"],
    ["chain", "serve"],
    ["chain", "status"],
    ["data", "prepare"],
    ["config", "show"],
    ["model", "export"],
    ["register"],
    ["status"],
]


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([*argv, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("argv", SUBCOMMANDS, ids=" ".join)
def test_every_option_has_help_text(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    for name in argv:
        parser = next(a for a in parser._actions if a.dest.endswith("command")).choices[name]  # type: ignore[union-attr,index]
    undocumented = [a.option_strings for a in parser._actions if a.option_strings and not a.help]
    assert not undocumented
    assert "usage: gauntlet" in _help(argv, capsys)


@pytest.mark.parametrize("command", ["miner", "validator"])
def test_node_help_lists_every_node_setting(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _help([command], capsys)
    for section in ["chain", "wallet", "storage", "model", "data", "train", "validator", "node"]:
        for name in GauntletConfig.model_fields[section].annotation.model_fields:  # type: ignore[union-attr]
            assert f"--{section}.{name}" in text


def test_top_level_help_names_each_subcommand_and_needs_no_torch() -> None:
    code = "import sys; from gauntlet.cli import main; main(['--help'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    for name in ["miner", "validator", "localnet", "chain", "data", "config"]:
        assert name in out.stdout
    check = "import sys, gauntlet.cli; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", check]).returncode == 0


def test_config_show_prints_the_effective_config_with_secrets_masked(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GAUNTLET_STORAGE__READ_SECRET_ACCESS_KEY", "hunter2")
    assert main(["config", "show", "--netuid", "12"]) == 0
    out = capsys.readouterr().out
    assert '"netuid": 12' in out and "hunter2" not in out and "***" in out


def test_invalid_configuration_exits_2_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "show", "--train.pages", "0"]) == 2
    assert "invalid configuration" in capsys.readouterr().err


def test_config_show_never_prints_a_secret(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = {
        "GAUNTLET_VALIDATOR__EVAL_SECRET": "c0ffee" * 8,
        "GAUNTLET_STORAGE__WRITE_SECRET_ACCESS_KEY": "write-secret-1",
        "GAUNTLET_STORAGE__READ_SECRET_ACCESS_KEY": "read-secret-2",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert not [value for value in secrets.values() if value in out]
    assert json.loads(out)["validator"]["eval_secret"] == "***"


def test_every_field_named_like_a_secret_is_marked_secret() -> None:
    from gauntlet.config.loader import secret_fields

    named = {
        (section, name)
        for section, info in GauntletConfig.model_fields.items()
        for name in info.annotation.model_fields  # type: ignore[union-attr]
        if "secret" in name
    }
    assert named and named <= set(secret_fields())


def test_output_into_a_closed_pipe_ends_quietly(tmp_path) -> None:
    """`gauntlet ... | head` closes the pipe early: the command exits 1 with no traceback."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "gauntlet.cli", "config", "show"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before it writes: its imports take far longer than this
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 1, err
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


def test_chain_serve_passes_every_subnet_default_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """`gauntlet chain serve` takes a flag for every subnet hyperparameter the service keeps,
    as the service's own entry point does, and hands each value to it."""
    from dataclasses import asdict

    import gauntlet.chain.sim.server as server
    from gauntlet.chain.sim.state import DEFAULT_HYPERPARAMETERS

    seen: dict[str, object] = {}
    monkeypatch.setattr(server, "run_serve", lambda **kwargs: seen.update(kwargs))
    names = list(asdict(DEFAULT_HYPERPARAMETERS))
    flags = [x for i, n in enumerate(names) for x in (f"--{n.replace('_', '-')}", str(100 + i))]
    assert main(["chain", "serve", *flags]) == 0
    assert {n: seen[n] for n in names} == {n: 100 + i for i, n in enumerate(names)}


def test_chain_serve_without_flags_keeps_the_service_defaults_but_a_short_rate_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No flag: None for each subnet default (the service's own), except the weights rate
    limit, which the CLI keeps under one localnet window."""
    from dataclasses import asdict

    import gauntlet.chain.sim.server as server
    from gauntlet.chain.sim.state import DEFAULT_HYPERPARAMETERS
    from gauntlet.commands import SIM_WEIGHTS_RATE_LIMIT

    seen: dict[str, object] = {}
    monkeypatch.setattr(server, "run_serve", lambda **kwargs: seen.update(kwargs))
    assert main(["chain", "serve"]) == 0
    expected = {n: None for n in asdict(DEFAULT_HYPERPARAMETERS)}
    expected["weights_rate_limit"] = SIM_WEIGHTS_RATE_LIMIT
    assert {n: seen[n] for n in expected} == expected
