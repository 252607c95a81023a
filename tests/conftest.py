"""Fixtures shared across test packages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

# Small enough to prepare in a second or two, large enough for 3+ miners' pages.
TEST_MAX_TOKENS = 1_000_000
TEST_PAGE_TOKENS = 4096


@pytest.fixture(scope="session")
def stdlib_dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A token dataset prepared once per test session from this machine's stdlib sources."""
    from gauntlet.data import ensure_dataset

    path = tmp_path_factory.mktemp("dataset") / "stdlib"
    ensure_dataset(path, page_tokens=TEST_PAGE_TOKENS, max_tokens=TEST_MAX_TOKENS)
    return path


# One Python process parses every command: btcli takes ~3 s to import, and a subprocess per
# documented command cost ~40 s of the suite. Typer also rebuilds btcli's whole click tree
# (some 2,500 commands) on every call, ~1.4 s each: built once here, every call of btcli's
# own main() reuses it (18 s -> 1.7 s for 12 commands, the same exit codes and output).
# Results go to a file because btcli's console may write to the real stdout whatever
# sys.stdout is.
_BTCLI_PARSE = """
import contextlib, io, json, sys
import typer.main
_build, _built = typer.main.get_command, {}
def _built_once(app):
    if id(app) not in _built:
        _built[id(app)] = _build(app)
    return _built[id(app)]
typer.main.get_command = _built_once
from bittensor.cli.main import main
argvs, results = json.loads(sys.argv[1]), []
for argv in argvs:
    sys.argv, out = ["btcli", *argv, "--help"], io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    results.append([code, out.getvalue()[-800:]])
open(RESULTS, "w").write(json.dumps(results))
"""


@pytest.fixture(scope="session")
def btcli_help(tmp_path_factory: pytest.TempPathFactory) -> Callable[[list[list[str]]], list]:
    """``parse(argvs)``: for each btcli argv (without ``btcli``), ``[exit code, output tail]``
    of ``btcli ARGV --help`` run by the installed btcli, all in one process."""

    def parse(argvs: list[list[str]]) -> list:
        results = tmp_path_factory.mktemp("btcli") / "results.json"
        script = _BTCLI_PARSE.replace("RESULTS", repr(str(results)))
        subprocess.run(
            [sys.executable, "-c", script, json.dumps(argvs)],
            capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        parsed: list = json.loads(results.read_text())
        assert len(parsed) == len(argvs)
        return parsed

    return parse


@pytest.fixture(scope="session")
def gpu_dry_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder bench/gpu.sh's dry run (CPU, smoke sizes) wrote: timings.txt, steps.log
    and each step's JSON (codec, codec-model, validator, checks, train, train-tuned). Run
    once: the tests of each benchmark's output read it here, so the script the GPU would run
    is the one tested."""
    out = tmp_path_factory.mktemp("gpu-dry-run")
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "GPU_BENCH_DEVICE": "cpu",
        "GPU_BENCH_QUICK": "1",
        "GPU_BENCH_INSTALL": "0",  # never pip-install into the test environment
    }
    subprocess.run(
        ["bash", str(Path(__file__).resolve().parents[1] / "bench" / "gpu.sh"), str(out)],
        env=env, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    return out
