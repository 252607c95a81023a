"""FilesystemStore specifics: keys cannot leave the bucket, writes are atomic."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from storage_helpers import run

from gauntlet.storage.base import ObjectNotFound, ObjectStore, ObjectTooLarge, StorageError
from gauntlet.storage.factory import build_store, store_from_commitment
from gauntlet.storage.filesystem import FilesystemStore
from protocol.commitment import FilesystemCommitment


@pytest.mark.parametrize(
    "key",
    [
        "../escape",
        "a/../../escape",
        "/etc/passwd",
        "a//b",
        "./a",
        "a/.",
        "",
        "a\\b",
        "a\x00b",
        ".tmp-x",
        "a/.tmp-y",
    ],
)
def test_keys_that_could_escape_or_hide_are_rejected(tmp_path: Path, key: str) -> None:
    store = FilesystemStore(tmp_path, "bucket")
    with pytest.raises(StorageError):
        run(store.put(key, b"x"))
    assert not (tmp_path / "escape").exists()


def test_symlink_out_of_the_bucket_is_rejected(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path, "bucket")
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "bucket" / "link").symlink_to(outside)
    with pytest.raises(StorageError):
        run(store.put("link/file", b"x"))
    assert list(outside.iterdir()) == []


def test_a_prefix_is_not_an_object(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path, "bucket")
    run(store.put("dir/file", b"x"))
    with pytest.raises(ObjectNotFound):
        run(store.head("dir"))
    with pytest.raises(ObjectNotFound):
        run(store.get("dir", max_bytes=10))
    run(store.delete("dir"))  # deleting a prefix: nothing to delete, no error
    assert run(store.get("dir/file", max_bytes=10)) == b"x"


def test_readers_never_see_a_partial_object(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path, "bucket")
    versions = [bytes([n]) * 2_000_000 for n in (1, 2)]
    run(store.put("k", versions[0]))
    stop = threading.Event()
    seen: list[bytes] = []

    def writer() -> None:
        n = 0
        while not stop.is_set():
            store._put("k", versions[n % 2])
            n += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(60):
            seen.append(store._get("k", max_bytes=3_000_000))
    finally:
        stop.set()
        thread.join()
    assert all(data in versions for data in seen)
    assert not [p for p in (tmp_path / "bucket").iterdir() if p.name.startswith(".tmp-")]


def test_put_if_absent_is_atomic_between_threads(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path, "bucket")
    wins: list[bytes] = []
    barrier = threading.Barrier(8)

    def racer(n: int) -> None:
        barrier.wait()
        try:
            store._put_if_absent("once", bytes([n]))
            wins.append(bytes([n]))
        except StorageError:
            pass

    threads = [threading.Thread(target=racer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    assert store._get("once", max_bytes=1) == wins[0]


def test_factory_builds_filesystem_stores(tmp_path: Path) -> None:
    own = build_store("filesystem", bucket="mine", root=tmp_path)
    run(own.put("k", b"v"))
    peer = store_from_commitment(FilesystemCommitment(bucket="mine", root=str(tmp_path)))
    assert isinstance(peer, FilesystemStore)
    assert run(peer.get("k", max_bytes=1)) == b"v"
    with pytest.raises(ValueError):
        build_store("filesystem", bucket="mine")
    assert os.path.isdir(tmp_path / "mine")


def test_base_class_file_helpers_work_for_stores_that_do_not_stream(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path, "bucket")
    src = tmp_path / "src"
    src.write_bytes(b"payload")
    run(ObjectStore.put_file(store, "k", src))  # the ABC's buffered defaults, not the overrides
    info = run(ObjectStore.get_to_file(store, "k", tmp_path / "out", max_bytes=7))
    assert info.size == 7 and (tmp_path / "out").read_bytes() == b"payload"
    with pytest.raises(ObjectTooLarge):
        run(ObjectStore.get_to_file(store, "k", tmp_path / "out2", max_bytes=6))
    assert not (tmp_path / "out2").exists()
