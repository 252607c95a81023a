"""The compose files are valid with the documented .env, and everything they read is documented."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from docker_helpers import COMPOSE_FILES, DOCKER, ROOT, compose_config, compose_variables

from gauntlet.config import ConfigError, load_config
from gauntlet.config.envdoc import DEPLOYMENT, render_env_example

ENV_EXAMPLE = (ROOT / ".env.example").read_text()
LISTED = dict(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=(.*)$", ENV_EXAMPLE, flags=re.MULTILINE))
DEPLOY_DEFAULTS = {v.name: v.default for group in DEPLOYMENT.values() for v in group}


def _workdir(tmp_path: Path, env_text: str) -> Path:
    shutil.copytree(DOCKER, tmp_path / "docker")
    (tmp_path / ".env").write_text(env_text)
    return tmp_path


def _uncommented(text: str) -> str:
    """.env.example with every listed variable set to its listed default."""
    return "\n".join(re.sub(r"^# ([A-Z][A-Z0-9_]*=)", r"\1", line) for line in text.splitlines())


def test_there_are_compose_files_to_check() -> None:
    assert {f.name for f in COMPOSE_FILES} >= {"compose.yml", "compose.localnet.yml"}


@pytest.mark.parametrize("compose_file", COMPOSE_FILES, ids=lambda f: f.name)
def test_compose_file_is_valid_with_env_made_from_env_example(
    compose_file: Path, tmp_path: Path
) -> None:
    done = compose_config(_workdir(tmp_path, ENV_EXAMPLE), compose_file)
    assert done.returncode == 0, done.stderr
    assert "could not parse" not in done.stderr, done.stderr  # every .env.example line is valid
    assert yaml.safe_load(done.stdout)["services"]


@pytest.mark.parametrize("compose_file", COMPOSE_FILES, ids=lambda f: f.name)
def test_compose_file_is_valid_with_every_listed_variable_set(
    compose_file: Path, tmp_path: Path
) -> None:
    done = compose_config(_workdir(tmp_path, _uncommented(ENV_EXAMPLE)), compose_file)
    assert done.returncode == 0, done.stderr
    assert "could not parse" not in done.stderr, done.stderr


def test_env_example_is_current() -> None:
    assert render_env_example() == ENV_EXAMPLE


@pytest.mark.parametrize("compose_file", COMPOSE_FILES, ids=lambda f: f.name)
def test_every_variable_a_compose_file_uses_is_in_env_example(compose_file: Path) -> None:
    used = {name for name, _ in compose_variables(compose_file.read_text())}
    assert used, "no ${VAR} found: the pattern is broken"
    assert sorted(used - set(LISTED)) == []


@pytest.mark.parametrize("compose_file", COMPOSE_FILES, ids=lambda f: f.name)
def test_compose_defaults_agree_with_env_example(compose_file: Path) -> None:
    for name, default in compose_variables(compose_file.read_text()):
        if name.startswith("GAUNTLET_"):
            continue
        assert default is not None, f"{name} has no default in {compose_file.name}"
        assert DEPLOY_DEFAULTS.get(name) == default, (name, default, DEPLOY_DEFAULTS.get(name))


def test_deployment_variables_are_not_settings() -> None:
    # gauntlet refuses GAUNTLET_* variables that name no setting, and compose hands the whole
    # .env to the nodes.
    assert not [name for name in DEPLOY_DEFAULTS if name.startswith("GAUNTLET_")]


def _node_services(config: dict) -> dict[str, dict]:
    return {
        name: service
        for name, service in config["services"].items()
        if "docker/Dockerfile" in str(service.get("build", {}).get("dockerfile", ""))
    }


@pytest.mark.parametrize("compose_file", COMPOSE_FILES, ids=lambda f: f.name)
def test_node_environments_are_valid_gauntlet_settings(compose_file: Path, tmp_path: Path) -> None:
    done = compose_config(_workdir(tmp_path, ENV_EXAMPLE), compose_file)
    services = _node_services(yaml.safe_load(done.stdout))
    assert services
    for name, service in services.items():
        env = {k: str(v) for k, v in (service.get("environment") or {}).items()}
        try:
            load_config(environ=env)
        except ConfigError as exc:
            pytest.fail(f"{compose_file.name} service {name}: {exc}")


def test_published_ports_listen_on_loopback_only(tmp_path: Path) -> None:
    for compose_file in COMPOSE_FILES:
        done = compose_config(_workdir(tmp_path / compose_file.stem, ENV_EXAMPLE), compose_file)
        for name, service in yaml.safe_load(done.stdout)["services"].items():
            for port in service.get("ports", []):
                text = port if isinstance(port, str) else f"{port.get('host_ip')}:{port}"
                assert text.startswith("127.0.0.1:"), (compose_file.name, name, port)


def test_wallets_are_mounted_read_only(tmp_path: Path) -> None:
    for compose_file in COMPOSE_FILES:
        done = compose_config(_workdir(tmp_path / compose_file.stem, ENV_EXAMPLE), compose_file)
        for name, service in yaml.safe_load(done.stdout)["services"].items():
            for volume in service.get("volumes", []):
                if ":/wallets" in str(volume):
                    assert str(volume).endswith(":ro"), (compose_file.name, name, volume)


def test_gpu_nodes_reserve_nvidia_devices() -> None:
    config = yaml.safe_load((DOCKER / "compose.yml").read_text())
    for name in ("miner", "validator"):
        devices = config["services"][name]["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["driver"] == "nvidia" and devices[0]["capabilities"] == ["gpu"]


def test_prometheus_scrapes_the_metrics_port_compose_gives_the_nodes() -> None:
    compose = yaml.safe_load((DOCKER / "compose.yml").read_text())
    port = compose["x-node-env"]["GAUNTLET_TELEMETRY__METRICS_PORT"]
    scrape = yaml.safe_load((DOCKER / "prometheus.yml").read_text())
    targets = {
        t for job in scrape["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]
    }
    assert {f"miner:{port}", f"validator:{port}"} <= targets


def test_dashboard_queries_name_only_metrics_the_nodes_export() -> None:
    from prometheus_client import CollectorRegistry

    from gauntlet.telemetry.metrics import NodeMetrics

    exported: set[str] = set()
    for family in NodeMetrics(CollectorRegistry()).registry.collect():
        suffixes = {
            "counter": ["_total"],
            "histogram": ["_bucket", "_sum", "_count"],
        }.get(family.type, [""])
        exported |= {family.name + s for s in suffixes}
    dashboard = json.loads((DOCKER / "grafana" / "dashboards" / "gauntlet.json").read_text())
    datasource = yaml.safe_load(
        (DOCKER / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"][0]["uid"]
    queried = set()
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == datasource
            queried |= set(re.findall(r"\bgauntlet_[a-z_]+", target["expr"]))
    assert queried and sorted(queried - exported) == []
