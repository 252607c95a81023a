"""PeerDirectory: a commitment that is bad for this network becomes "no store", logged once."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from gauntlet.config.schema import GauntletConfig
from gauntlet.node.peers import PeerDirectory
from gauntlet.storage.base import ObjectStore
from gauntlet.storage.filesystem import FilesystemStore
from gauntlet.storage.s3 import S3Store
from protocol.commitment import FilesystemCommitment, S3Commitment, encode_commitment

ETC_PASSWD = '{"kind":"fs","root":"/etc","bucket":"passwd"}'


def config(network: str, root: Path, **storage) -> GauntletConfig:
    return GauntletConfig.model_validate(
        {"chain": {"network": network}, "storage": {"root": str(root), **storage}}
    )


def fs_commitment(root: Path, bucket: str = "gauntlet-peer") -> str:
    return encode_commitment(FilesystemCommitment(root=str(root), bucket=bucket))


def s3_commitment(endpoint: str) -> str:
    return encode_commitment(
        S3Commitment(bucket="gauntlet-peer", endpoint=endpoint, access_key="a", secret_key="s")
    )


def test_commitment_naming_an_existing_file_is_no_store_not_a_crash(tmp_path) -> None:
    # /etc/passwd is a file: the old reader's mkdir raised FileExistsError out of gather.
    directory = PeerDirectory()  # the default policy: opens what parses, read-only, no mkdir
    store = directory.store_for("peer", ETC_PASSWD)
    assert store is not None and asyncio.run(_keys(store)) == []
    assert Path("/etc/passwd").is_file()
    configured = PeerDirectory.for_config(config("sim", tmp_path))
    assert configured.store_for("peer", ETC_PASSWD) is None


async def _keys(store: ObjectStore) -> list[str]:
    return [info.key async for info in store.list()]


def test_reading_a_peer_bucket_creates_no_directory(tmp_path) -> None:
    store = PeerDirectory.for_config(config("sim", tmp_path)).store_for(
        "peer", fs_commitment(tmp_path.resolve())
    )
    assert isinstance(store, FilesystemStore)
    assert not (tmp_path / "gauntlet-peer").exists()


def test_filesystem_commitment_under_the_root_is_opened_on_the_simulated_chain(tmp_path) -> None:
    (tmp_path / "gauntlet-peer").mkdir()
    directory = PeerDirectory.for_config(config("sim", tmp_path))
    assert isinstance(
        directory.store_for("peer", fs_commitment(tmp_path.resolve())), FilesystemStore
    )


def test_symlink_under_the_root_that_leads_out_of_it_is_no_store(tmp_path) -> None:
    root, outside = tmp_path / "stores", tmp_path / "outside"
    root.mkdir(), outside.mkdir()
    (root / "gauntlet-peer").symlink_to(outside)
    directory = PeerDirectory.for_config(config("sim", root))
    assert directory.store_for("peer", fs_commitment(root.resolve())) is None


def test_filesystem_commitment_is_no_store_on_finney(tmp_path) -> None:
    directory = PeerDirectory.for_config(config("finney", tmp_path))
    assert directory.store_for("peer", fs_commitment(tmp_path.resolve())) is None


def test_localnet_loopback_s3_is_opened_on_the_simulated_chain(tmp_path) -> None:
    directory = PeerDirectory.for_config(config("sim", tmp_path))
    assert isinstance(directory.store_for("peer", s3_commitment("http://127.0.0.1:9000")), S3Store)


def test_loopback_s3_is_no_store_on_finney_unless_the_operator_allows_it(tmp_path) -> None:
    raw = s3_commitment("https://127.0.0.1:9000")
    assert PeerDirectory.for_config(config("finney", tmp_path)).store_for("peer", raw) is None
    allowing = config("finney", tmp_path, peer_private_endpoints=True)
    assert isinstance(PeerDirectory.for_config(allowing).store_for("peer", raw), S3Store)


def test_a_bad_commitment_is_logged_once(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    directory = PeerDirectory.for_config(config("finney", tmp_path))
    with caplog.at_level(logging.WARNING, logger="gauntlet.node.peers"):
        for _ in range(3):
            assert directory.store_for("peer", ETC_PASSWD) is None
    assert len(caplog.records) == 1 and "peer" in caplog.records[0].getMessage()
