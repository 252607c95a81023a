"""Every command in a ```bash/```sh block of README.md and docs/*.md at least parses.

``gauntlet`` commands: the subcommand exists, every ``--option`` is one it takes, and
``--help`` answers. ``make`` targets exist in the Makefile; scripts and test files named
exist. ``btcli`` commands run with ``--help`` appended against the installed bittensor 11
CLI (unknown options fail there before help is printed). docker, curl, mc, jq and the
like are left to their own tools.
"""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from gauntlet.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BTCLI = Path(sys.executable).parent / "btcli"
FENCE = re.compile(r"^```(bash|sh|shell)\n(.*?)^```", re.S | re.M)
OPERATORS = {"&&", "||", ";", "|", "&"}
REDIRECTS = {">", ">>", "<", "2>", "2>&1"}


@dataclass(frozen=True)
class DocCommand:
    where: str  # file:line
    argv: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.where}: {shlex.join(self.argv)}"


def _logical_lines(block: str, first_line: int) -> list[tuple[int, str]]:
    """Lines with backslash continuations joined, each with its first line number."""
    out: list[tuple[int, str]] = []
    pending, start = "", first_line
    for n, line in enumerate(block.splitlines(), first_line):
        if not pending:
            start = n
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        out.append((start, pending + line))
        pending = ""
    return out


def _simple_commands(tokens: list[str]) -> list[list[str]]:
    commands: list[list[str]] = [[]]
    skip_next = False
    for token in tokens:
        if skip_next:
            skip_next = False
        elif token in OPERATORS:
            commands.append([])
        elif token in REDIRECTS:
            skip_next = True  # the redirect's target
        else:
            commands[-1].append(token)
    # VAR=value prefixes set the environment; what follows is the command.
    stripped = []
    for argv in commands:
        while argv and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", argv[0]):
            argv = argv[1:]
        if argv:
            stripped.append(argv)
    return stripped


def doc_commands() -> list[DocCommand]:
    found = []
    for path in DOCS:
        text = path.read_text()
        for block in FENCE.finditer(text):
            first = text.count("\n", 0, block.start(2)) + 1
            for line_no, line in _logical_lines(block.group(2), first):
                try:
                    tokens = shlex.split(line, comments=True)
                except ValueError as exc:
                    raise AssertionError(
                        f"{path.name}:{line_no}: unparseable shell: {exc}"
                    ) from None
                for argv in _simple_commands(tokens):
                    argv[0] = argv[0].removeprefix(".venv/bin/")
                    found.append(DocCommand(f"{path.name}:{line_no}", tuple(argv)))
    return found


COMMANDS = doc_commands()


def _gauntlet_args(argv: tuple[str, ...]) -> list[str] | None:
    """The arguments after ``gauntlet`` (also ``python -m gauntlet.cli``, torchrun's
    ``-m gauntlet.cli`` and ``python neurons/<role>.py``); None for other commands."""
    if argv[0] == "gauntlet":
        return list(argv[1:])
    if "-m" in argv and argv[0] in {"python", "python3", "torchrun"}:
        i = argv.index("-m")
        return list(argv[i + 2 :]) if argv[i + 1 : i + 2] == ("gauntlet.cli",) else None
    if argv[0] in {"python", "python3"} and len(argv) > 1 and argv[1].startswith("neurons/"):
        return [Path(argv[1]).stem, *argv[2:]]
    return None


def _of(kind: str) -> list[DocCommand]:
    def matches(c: DocCommand) -> bool:
        if kind == "gauntlet":
            return _gauntlet_args(c.argv) is not None
        return c.argv[0] == kind

    return [c for c in COMMANDS if matches(c)]


def test_the_docs_hold_commands_of_each_kind_checked_here() -> None:
    for kind in ("gauntlet", "make", "btcli"):
        assert len(_of(kind)) >= 3, kind


@pytest.mark.parametrize("command", _of("gauntlet"), ids=str)
def test_gauntlet_commands_name_real_subcommands_and_options(
    command: DocCommand, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _gauntlet_args(command.argv)
    assert args is not None
    parser, path = build_parser(), []
    while args and not args[0].startswith("-"):
        sub = next((a for a in parser._actions if a.dest.endswith("command")), None)
        if sub is None:
            break
        choices = sub.choices  # type: ignore[attr-defined]
        assert args[0] in choices, f"{command}: no subcommand {args[0]!r}"
        parser = choices[args[0]]
        path.append(args.pop(0))
    known = parser._option_string_actions
    unknown = [a for a in args if a.startswith("--") and a.split("=")[0] not in known]
    assert not unknown, f"{command}: unknown options {unknown}"
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args([*path, "--help"])
    assert done.value.code == 0 and "usage: gauntlet" in capsys.readouterr().out


def _make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", text, re.M))


@pytest.mark.parametrize("command", _of("make"), ids=str)
def test_make_targets_exist(command: DocCommand) -> None:
    targets = [a for a in command.argv[1:] if "=" not in a and not a.startswith("-")]
    assert set(targets) <= _make_targets(), command


@pytest.mark.parametrize(
    "command",
    [c for c in COMMANDS if c.argv[0] in {"python", "python3", "bash", "pytest"}],
    ids=str,
)
def test_scripts_and_test_files_named_exist(command: DocCommand) -> None:
    paths = [a for a in command.argv[1:] if re.search(r"\.(py|sh)$", a)]
    missing = [p for p in paths if not (ROOT / p).exists() and not p.startswith("/")]
    assert not missing, command


@pytest.fixture(scope="module")
def btcli_parsed(btcli_help: Callable[[list[list[str]]], list]) -> dict[DocCommand, list]:
    commands = _of("btcli")
    return dict(zip(commands, btcli_help([c.argv[1:] for c in commands]), strict=True))


@pytest.mark.skipif(not BTCLI.exists(), reason="btcli is not installed next to this Python")
@pytest.mark.parametrize("command", _of("btcli"), ids=str)
def test_btcli_commands_parse_with_the_installed_btcli(
    command: DocCommand, btcli_parsed: dict[DocCommand, list]
) -> None:
    code, output = btcli_parsed[command]
    assert code == 0, f"{command}\n{output}"
