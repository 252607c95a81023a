"""Datasets through object storage: upload, download with every shard
checked, refusal of tampered or unexpected data."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from gauntlet.data import (
    DatasetError,
    PageDataset,
    download_dataset,
    prepare_dataset,
    upload_dataset,
)
from gauntlet.storage.filesystem import FilesystemStore
from gauntlet.storage.local_servers import start_moto
from gauntlet.storage.s3 import S3Credentials, S3Store

PAGE = 16
PREFIX = "datasets/v1"


@pytest.fixture
def dataset(corpus, tmp_path) -> Path:
    out = tmp_path / "local"
    prepare_dataset([corpus], out, page_tokens=PAGE, validation_fraction=0.1, shard_bytes=4 * PAGE)
    return out


@pytest.fixture
def store(tmp_path) -> FilesystemStore:
    return FilesystemStore(tmp_path / "buckets", "data")


def files_of(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_download_reproduces_the_uploaded_dataset(dataset, store, tmp_path):
    manifest = asyncio.run(upload_dataset(dataset, store, PREFIX))
    assert manifest.shards is not None and len(manifest.shards) > 2
    ds = asyncio.run(
        download_dataset(store, PREFIX, tmp_path / "copy", dataset_id=manifest.dataset_id)
    )
    assert ds.dataset_id == manifest.dataset_id
    assert files_of(tmp_path / "copy") == files_of(dataset)
    PageDataset(tmp_path / "copy", verify=True)


def test_a_tampered_shard_in_the_store_is_refused(dataset, store, tmp_path):
    asyncio.run(upload_dataset(dataset, store, PREFIX))
    shard = store.base / PREFIX / "shard-00001.bin"
    data = bytearray(shard.read_bytes())
    data[0] ^= 1
    shard.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=r"shard-00001\.bin: does not match"):
        asyncio.run(download_dataset(store, PREFIX, tmp_path / "copy"))
    assert not (tmp_path / "copy" / "manifest.json").exists()
    assert not (tmp_path / "copy" / "shard-00001.bin").exists()


def test_a_longer_shard_in_the_store_is_refused(dataset, store, tmp_path):
    asyncio.run(upload_dataset(dataset, store, PREFIX))
    shard = store.base / PREFIX / "shard-00000.bin"
    shard.write_bytes(shard.read_bytes() + b"x")
    with pytest.raises(DatasetError, match=r"shard-00000\.bin: larger"):
        asyncio.run(download_dataset(store, PREFIX, tmp_path / "copy"))


def test_another_dataset_id_is_refused(dataset, store, tmp_path):
    asyncio.run(upload_dataset(dataset, store, PREFIX))
    with pytest.raises(DatasetError, match="not 0123456789abcdef"):
        asyncio.run(
            download_dataset(store, PREFIX, tmp_path / "copy", dataset_id="0123456789abcdef")
        )


def test_a_missing_manifest_is_a_dataset_error(store, tmp_path):
    with pytest.raises(DatasetError, match="no manifest.json"):
        asyncio.run(download_dataset(store, PREFIX, tmp_path / "copy"))


def test_an_interrupted_download_resumes_keeping_good_shards(dataset, store, tmp_path):
    asyncio.run(upload_dataset(dataset, store, PREFIX))
    copy = tmp_path / "copy"
    copy.mkdir()
    kept = copy / "shard-00000.bin"
    kept.write_bytes((dataset / "shard-00000.bin").read_bytes())
    stamp = kept.stat().st_mtime_ns
    (copy / "shard-00001.bin").write_bytes(b"half")
    ds = asyncio.run(download_dataset(store, PREFIX, copy))
    assert kept.stat().st_mtime_ns == stamp
    assert ds.dataset_id == PageDataset(dataset).dataset_id
    assert files_of(copy) == files_of(dataset)


def test_a_corrupt_local_dataset_is_not_uploaded(dataset, store):
    path = dataset / "shard-00000.bin"
    path.write_bytes(bytes(reversed(path.read_bytes())))
    with pytest.raises(DatasetError, match=r"shard-00000\.bin does not match"):
        asyncio.run(upload_dataset(dataset, store, PREFIX))
    assert not list((store.base).rglob("manifest.json"))


@pytest.fixture
def moto_store(tmp_path) -> Iterator[S3Store]:
    """A bucket on a real S3 server (moto) on loopback, stopped by its PID."""
    server = start_moto(tmp_path)
    store = S3Store(
        "gauntlet-data",
        endpoint_url=server.endpoint_url,
        credentials=S3Credentials("testing", "testing"),
        region="us-east-1",
        path_style=True,
    )
    try:
        asyncio.run(store.create_bucket())
        yield store
    finally:
        asyncio.run(store.close())
        server.stop()


def test_round_trip_through_an_s3_server(dataset, moto_store, tmp_path):
    manifest = asyncio.run(upload_dataset(dataset, moto_store, PREFIX))
    ds = asyncio.run(download_dataset(moto_store, PREFIX, tmp_path / "copy"))
    assert ds.dataset_id == manifest.dataset_id
    assert files_of(tmp_path / "copy") == files_of(dataset)
