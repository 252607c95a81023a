"""Shared by the tests of docker/: paths, the scripts there as modules, the compose binary."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE_FILES = sorted(DOCKER.glob("compose*.yml"))
ENTRYPOINT = DOCKER / "entrypoint.sh"
VENV_BIN = Path(sys.executable).parent

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}; `$${...}` is a literal dollar.
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def load_script(name: str) -> ModuleType:
    """``docker/<name>.py`` as a module (docker/ is not a package; the image runs it as a file)."""
    spec = importlib.util.spec_from_file_location(f"docker_{name}", DOCKER / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def docker_compose() -> str:
    """The docker-compose binary; its absence is a failure, not a skip (CI installs it)."""
    found = shutil.which("docker-compose")
    if found is None:
        pytest.fail(
            "docker-compose is not installed, so the compose files cannot be validated: "
            "`apt-get install docker-compose` (.ci/run installs it on CI machines)"
        )
    return found


def compose_variables(text: str) -> list[tuple[str, str | None]]:
    """Every (name, default) a compose file interpolates; default None when it gives none."""
    found = []
    for name, op, default in VARIABLE.findall(text):
        found.append((name, default if op in ("-", ":-") else None))
    return found


def compose_config(workdir: Path, compose_file: Path) -> subprocess.CompletedProcess[str]:
    """``docker-compose config`` of a copy of docker/ in ``workdir`` (with ``workdir/.env``)."""
    return subprocess.run(
        [
            docker_compose(),
            "--env-file", str(workdir / ".env"),
            "-f", str(workdir / "docker" / compose_file.name),
            "config",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=workdir,
    )  # fmt: skip
