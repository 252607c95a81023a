"""Storage fixtures: one ``store`` fixture over three real backends.

The S3 servers are real processes on loopback, started once per session and
ended by PID at teardown. Every test gets a fresh bucket, so tests never see
each other's keys.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from storage_helpers import RCLONE_KEYS, new_bucket, new_s3_store, run

from gauntlet.storage.base import ObjectStore
from gauntlet.storage.filesystem import FilesystemStore
from gauntlet.storage.local_servers import LocalServer, start_moto, start_rclone

BACKENDS = ["filesystem", "moto", "rclone"]


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    server = start_moto(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def rclone_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rclone") / "buckets"
    root.mkdir()
    return root


@pytest.fixture(scope="session")
def rclone_server(rclone_root: Path) -> Iterator[LocalServer]:
    server = start_rclone(rclone_root, RCLONE_KEYS.access_key_id, RCLONE_KEYS.secret_access_key)
    yield server
    server.stop()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    """An empty bucket on ``backend``."""
    made: ObjectStore
    if backend == "filesystem":
        made = FilesystemStore(tmp_path / "fs", new_bucket())
    else:
        made = new_s3_store(request.getfixturevalue(f"{backend}_server"))
    yield made
    run(made.close())
