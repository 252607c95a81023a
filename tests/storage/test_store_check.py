"""The node's start-up check of its own bucket, against a real S3 server (rclone, which
checks signatures) and the filesystem backend: each misconfiguration is one line naming
what to fix, found before the commitment goes on chain (issue 16)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from storage_helpers import RCLONE_KEYS, list_all, new_s3_store, run, s3_store

from gauntlet.node.store_check import PROBE_PREFIX, StoreCheckError, check_own_store
from gauntlet.storage.filesystem import FilesystemStore
from gauntlet.storage.local_servers import LocalServer
from gauntlet.storage.s3 import S3Credentials
from protocol.commitment import FilesystemCommitment, S3Commitment

HOTKEY = "5Miner" + "x" * 42


def _commitment(server: LocalServer, bucket: str, secret: str | None = None) -> S3Commitment:
    return S3Commitment(
        bucket=bucket,
        endpoint=server.endpoint_url,
        region="us-east-1",
        access_key=RCLONE_KEYS.access_key_id,
        secret_key=secret or RCLONE_KEYS.secret_access_key,
    )


def test_a_working_bucket_passes_and_keeps_no_probe(
    rclone_server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    store = new_s3_store(rclone_server)
    with caplog.at_level(logging.WARNING, logger="gauntlet.node.store_check"):
        run(check_own_store(store, _commitment(rclone_server, store.bucket), HOTKEY))
    assert run(list_all(store, PROBE_PREFIX)) == []
    # rclone cannot make a key read-only: said once, not refused
    assert "can also write" in caplog.text


def test_a_missing_bucket_is_named_before_anything_is_published(
    rclone_server: LocalServer,
) -> None:
    store = s3_store(rclone_server, "no-such-bucket")
    with pytest.raises(StoreCheckError, match="bucket no-such-bucket at .* does not exist"):
        run(check_own_store(store, _commitment(rclone_server, "no-such-bucket"), HOTKEY))


def test_a_wrong_write_key_is_named(rclone_server: LocalServer) -> None:
    good = new_s3_store(rclone_server)
    store = s3_store(
        rclone_server, good.bucket, credentials=S3Credentials(RCLONE_KEYS.access_key_id, "wrong")
    )
    with pytest.raises(StoreCheckError, match="write key cannot write"):
        run(check_own_store(store, _commitment(rclone_server, good.bucket), HOTKEY))


def test_a_read_key_validators_could_not_use_is_refused(rclone_server: LocalServer) -> None:
    store = new_s3_store(rclone_server)
    wrong = _commitment(rclone_server, store.bucket, secret="not-the-secret")
    with pytest.raises(StoreCheckError, match="would score this node unreadable"):
        run(check_own_store(store, wrong, HOTKEY))
    assert run(list_all(store, PROBE_PREFIX)) == []  # the probe is cleaned up anyway


def test_a_filesystem_bucket_passes(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path, "gauntlet-miner0")
    commitment = FilesystemCommitment(bucket="gauntlet-miner0", root=str(tmp_path.resolve()))
    run(check_own_store(store, commitment, HOTKEY))
    assert run(list_all(store, PROBE_PREFIX)) == []
