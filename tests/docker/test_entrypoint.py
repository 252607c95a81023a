"""docker/entrypoint.sh maps a container's environment to the command it runs.

A stand-in ``gauntlet`` (and ``python``) on PATH records its arguments and GAUNTLET_*
environment, so each mapping is checked without starting a node.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from docker_helpers import ENTRYPOINT

RECORDER = """#!/usr/bin/env bash
# Records how it was called, as JSON, in $RECORD.
python3 - "$0" "$@" <<'EOF'
import json, os, sys
json.dump({"argv": [os.path.basename(sys.argv[1]), *sys.argv[2:]], "env": dict(os.environ)},
          open(os.environ["RECORD"], "w"))
EOF
"""


@pytest.fixture
def fake_bin(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("gauntlet", "python"):
        (bin_dir / name).write_text(RECORDER)
        (bin_dir / name).chmod(0o755)
    return bin_dir


def run_entrypoint(
    tmp_path: Path, fake_bin: Path, *args: str, **env: str
) -> tuple[subprocess.CompletedProcess[str], dict]:
    record = tmp_path / "record.json"
    base = {k: v for k, v in os.environ.items() if not k.startswith("GAUNTLET_")}
    done = subprocess.run(
        ["bash", str(ENTRYPOINT), *args],
        env={
            **base,
            "PATH": f"{fake_bin}:/usr/bin:/bin",
            "RECORD": str(record),
            "ROLE_FILE": str(tmp_path / "role"),
            "WAIT_FOR": "none",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done, (json.loads(record.read_text()) if record.exists() else {})


def test_role_argument_runs_that_gauntlet_command_with_node_args(tmp_path, fake_bin) -> None:
    done, call = run_entrypoint(
        tmp_path, fake_bin, "validator", "--node.log_level", "DEBUG", NODE_ARGS="--chain.netuid 3"
    )
    assert done.returncode == 0, done.stderr
    assert call["argv"] == [
        "gauntlet",
        "validator",
        "--chain.netuid",
        "3",
        "--node.log_level",
        "DEBUG",
    ]
    assert (tmp_path / "role").read_text().strip() == "validator"


def test_node_role_variable_chooses_the_role(tmp_path, fake_bin) -> None:
    done, call = run_entrypoint(tmp_path, fake_bin, NODE_ROLE="miner")
    assert done.returncode == 0, done.stderr
    assert call["argv"] == ["gauntlet", "miner"]


def test_node_settings_stay_in_the_environment_and_other_secrets_are_dropped(
    tmp_path, fake_bin
) -> None:
    done, call = run_entrypoint(
        tmp_path,
        fake_bin,
        "miner",
        GAUNTLET_STORAGE__WRITE_SECRET_ACCESS_KEY="node-secret",
        STORE_ADMIN_SECRET_ACCESS_KEY="admin-secret",
        GRAFANA_ADMIN_PASSWORD="grafana",
        VALIDATOR_WRITE_SECRET_ACCESS_KEY="other-node",
    )
    assert done.returncode == 0, done.stderr
    assert "node-secret" not in " ".join(call["argv"])  # never on a command line
    assert call["env"]["GAUNTLET_STORAGE__WRITE_SECRET_ACCESS_KEY"] == "node-secret"
    for dropped in (
        "STORE_ADMIN_SECRET_ACCESS_KEY",
        "GRAFANA_ADMIN_PASSWORD",
        "VALIDATOR_WRITE_SECRET_ACCESS_KEY",
    ):
        assert dropped not in call["env"]


def test_miner_with_several_processes_runs_under_torchrun(tmp_path, fake_bin) -> None:
    done, call = run_entrypoint(tmp_path, fake_bin, "miner", NPROC_PER_NODE="4")
    assert done.returncode == 0, done.stderr
    assert call["argv"] == [
        "python", "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "4",
        "-m", "gauntlet.cli", "miner",
    ]  # fmt: skip


def test_localnet_gets_every_setting_as_a_flag_and_none_as_a_variable(tmp_path, fake_bin) -> None:
    # Its child nodes inherit its environment, where GAUNTLET_* would beat the per-run config.
    done, call = run_entrypoint(
        tmp_path,
        fake_bin,
        "localnet",
        GAUNTLET_LOCALNET__WINDOWS="2",
        GAUNTLET_DATA__DATASET_DIR="/somewhere/stdlib",
        GAUNTLET_CONFIG="/etc/gauntlet.toml",
    )
    assert done.returncode == 0, done.stderr
    argv = call["argv"]
    assert argv[:2] == ["gauntlet", "localnet"]
    pairs = dict(zip(argv[2::2], argv[3::2], strict=True))
    assert pairs == {
        "--config": "/etc/gauntlet.toml",
        "--data.dataset_dir": "/somewhere/stdlib",
        "--localnet.windows": "2",
    }
    assert not [k for k in call["env"] if k.startswith("GAUNTLET_")]


def test_chain_role_serves_the_simulated_chain_on_all_interfaces(tmp_path, fake_bin) -> None:
    done, call = run_entrypoint(tmp_path, fake_bin, "chain", SIM_CHAIN_BLOCK_TIME="0.5")
    assert done.returncode == 0, done.stderr
    assert call["argv"] == [
        "gauntlet", "chain", "serve", "--host", "0.0.0.0", "--port", "9946",
        "--db", "chain.sqlite", "--block-time", "0.5",
    ]  # fmt: skip


def test_other_gauntlet_commands_pass_through(tmp_path, fake_bin) -> None:
    done, call = run_entrypoint(tmp_path, fake_bin, "chain", "status", "--chain.netuid", "2")
    assert done.returncode == 0, done.stderr
    assert call["argv"] == ["gauntlet", "chain", "status", "--chain.netuid", "2"]


def test_unknown_role_is_a_configuration_error(tmp_path, fake_bin) -> None:
    done, call = run_entrypoint(tmp_path, fake_bin, NODE_ROLE="minre")
    assert done.returncode == 78
    assert "NODE_ROLE must be" in done.stderr and not call


def test_bad_process_count_is_a_configuration_error(tmp_path, fake_bin) -> None:
    done, _ = run_entrypoint(tmp_path, fake_bin, "miner", NPROC_PER_NODE="two")
    assert done.returncode == 78 and "NPROC_PER_NODE" in done.stderr


def test_waits_for_the_chain_endpoint_and_gives_up_with_its_name(tmp_path, fake_bin) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done, call = run_entrypoint(
        tmp_path,
        fake_bin,
        "miner",
        WAIT_FOR="auto",
        WAIT_TIMEOUT="1",
        GAUNTLET_CHAIN__ENDPOINT=f"http://127.0.0.1:{port}",
    )
    assert done.returncode == 78 and not call
    assert f"http://127.0.0.1:{port} is not reachable" in done.stderr


def test_starts_once_the_chain_endpoint_listens(tmp_path, fake_bin) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        done, call = run_entrypoint(
            tmp_path,
            fake_bin,
            "validator",
            WAIT_FOR="auto",
            WAIT_TIMEOUT="10",
            GAUNTLET_CHAIN__ENDPOINT=f"http://127.0.0.1:{port}",
        )
    assert done.returncode == 0, done.stderr
    assert call["argv"] == ["gauntlet", "validator"]
    assert "is up" in done.stderr


def test_healthcheck_passes_without_a_metrics_port(tmp_path) -> None:
    (tmp_path / "role").write_text("miner\n")
    done = subprocess.run(
        ["bash", str(ENTRYPOINT), "healthcheck"],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("GAUNTLET_")},
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "ROLE_FILE": str(tmp_path / "role"),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_healthcheck_fails_when_the_metrics_port_does_not_answer(tmp_path) -> None:
    (tmp_path / "role").write_text("validator\n")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = subprocess.run(
        ["bash", str(ENTRYPOINT), "healthcheck"],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("GAUNTLET_")},
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "ROLE_FILE": str(tmp_path / "role"),
            "GAUNTLET_TELEMETRY__METRICS_PORT": str(port),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert f"127.0.0.1:{port} not answering" in done.stderr


class _Metrics(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200 if self.path == "/metrics" else 404)
        self.end_headers()
        self.wfile.write(b"gauntlet_window 3\n")

    def log_message(self, *args: object) -> None:
        pass


def test_healthcheck_passes_when_metrics_answer(tmp_path) -> None:
    (tmp_path / "role").write_text("miner\n")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Metrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        done = subprocess.run(
            ["bash", str(ENTRYPOINT), "healthcheck"],
            env={
                **{k: v for k, v in os.environ.items() if not k.startswith("GAUNTLET_")},
                "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
                "ROLE_FILE": str(tmp_path / "role"),
                "GAUNTLET_TELEMETRY__METRICS_PORT": str(server.server_address[1]),
                "GAUNTLET_TELEMETRY__METRICS_HOST": "0.0.0.0",
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 0, done.stderr
