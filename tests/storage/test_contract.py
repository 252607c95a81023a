"""The ObjectStore contract, checked on every backend: the filesystem, moto and
``rclone serve s3``. Where a server lacks a feature the test says so (xfail with
the observed behaviour), never a silent skip."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from storage_helpers import PAGE_SIZE, list_all, run

from gauntlet.storage.base import (
    ObjectNotFound,
    ObjectStore,
    ObjectTooLarge,
    PreconditionFailed,
)
from gauntlet.storage.retention import delete_older_than
from protocol.keys import contribution_key, contributions_prefix, protocol_prefix

CLOCK_SLACK_S = 120  # loopback servers share our clock; S3 timestamps have 1 s resolution


def test_put_then_get_returns_the_same_bytes(store: ObjectStore) -> None:
    data = os.urandom(300_000)
    info = run(store.put("a/b/c.bin", data))
    assert info.key == "a/b/c.bin" and info.size == len(data)
    assert run(store.get("a/b/c.bin", max_bytes=len(data))) == data


def test_put_replaces_an_existing_object(store: ObjectStore) -> None:
    run(store.put("k", b"old"))
    run(store.put("k", b"new contents"))
    assert run(store.get("k", max_bytes=100)) == b"new contents"


def test_empty_object_round_trips(store: ObjectStore) -> None:
    run(store.put("empty", b""))
    assert run(store.get("empty", max_bytes=0)) == b""
    assert run(store.head("empty")).size == 0


def test_head_reports_size_and_server_time(store: ObjectStore) -> None:
    before = time.time()
    run(store.put("x", b"12345"))
    info = run(store.head("x"))
    assert info.size == 5
    assert before - CLOCK_SLACK_S <= info.last_modified <= time.time() + CLOCK_SLACK_S


def test_missing_key_is_object_not_found(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound):
        run(store.get("nope", max_bytes=10))
    with pytest.raises(ObjectNotFound):
        run(store.head("nope"))
    with pytest.raises(ObjectNotFound):
        run(store.get_range("nope", 0, 4))


def test_get_refuses_an_object_larger_than_max_bytes(store: ObjectStore) -> None:
    run(store.put("big", b"x" * 1000))
    with pytest.raises(ObjectTooLarge):
        run(store.get("big", max_bytes=999))
    assert len(run(store.get("big", max_bytes=1000))) == 1000


def test_get_range_returns_the_slice_and_less_at_the_end(store: ObjectStore) -> None:
    run(store.put("r", b"0123456789"))
    assert run(store.get_range("r", 2, 3)) == b"234"
    assert run(store.get_range("r", 8, 10)) == b"89"
    assert run(store.get_range("r", 10, 5)) == b""
    assert run(store.get_range("r", 3, 0)) == b""


def test_put_if_absent_creates_a_new_key(store: ObjectStore) -> None:
    info = run(store.put_if_absent("fresh", b"first"))
    assert info.size == 5
    assert run(store.get("fresh", max_bytes=10)) == b"first"


def test_put_if_absent_refuses_an_existing_key(store: ObjectStore, backend: str) -> None:
    run(store.put("taken", b"original"))
    try:
        run(store.put_if_absent("taken", b"intruder"))
    except PreconditionFailed:
        assert run(store.get("taken", max_bytes=100)) == b"original"
        return
    after = run(store.get("taken", max_bytes=100))
    if backend == "rclone":
        pytest.xfail(
            "rclone serve s3 ignores If-None-Match: * (observed: PUT answers 200 and "
            f"overwrites, object is now {after!r}); use conditional_put='check_then_put'"
        )
    pytest.fail(f"{backend}: put_if_absent overwrote an existing key (now {after!r})")


def test_list_returns_keys_under_prefix_in_order(store: ObjectStore) -> None:
    for key in ["p/b", "p/a", "p/c/d", "q/a", "pz"]:
        run(store.put(key, key.encode()))
    infos = run(list_all(store, "p/"))
    assert [i.key for i in infos] == ["p/a", "p/b", "p/c/d"]
    assert [i.size for i in infos] == [3, 3, 5]
    assert [i.key for i in run(list_all(store))] == ["p/a", "p/b", "p/c/d", "pz", "q/a"]


def test_list_paginates_past_one_page(store: ObjectStore) -> None:
    count = 3 * PAGE_SIZE + 1  # S3 stores in these tests list PAGE_SIZE keys per request
    keys = [f"many/{i:03d}" for i in range(count)]

    async def put_all() -> None:
        await asyncio.gather(*(store.put(k, b"v") for k in keys))

    run(put_all())
    assert [i.key for i in run(list_all(store, "many/"))] == keys


def test_delete_removes_and_tolerates_absent_keys(store: ObjectStore) -> None:
    run(store.put("gone", b"x"))
    run(store.delete("gone"))
    with pytest.raises(ObjectNotFound):
        run(store.head("gone"))
    run(store.delete("gone"))  # second time: still no error


def test_concurrent_gets_return_each_object(store: ObjectStore) -> None:
    blobs = {f"g/{i}": os.urandom(50_000 + i) for i in range(8)}

    async def scenario() -> list[bytes]:
        await asyncio.gather(*(store.put(k, v) for k, v in blobs.items()))
        return await asyncio.gather(*(store.get(k, max_bytes=1 << 20) for k in blobs))

    assert run(scenario()) == list(blobs.values())


def test_put_file_and_get_to_file_stream_a_file(store: ObjectStore, tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(3_000_000))
    info = run(store.put_file("files/blob", src))
    assert info.size == src.stat().st_size
    dest = tmp_path / "out" / "blob"
    got = run(store.get_to_file("files/blob", dest, max_bytes=10_000_000))
    assert got.size == info.size
    assert dest.read_bytes() == src.read_bytes()


def test_get_to_file_refuses_a_large_object_and_leaves_no_file(
    store: ObjectStore, tmp_path: Path
) -> None:
    run(store.put("files/big", b"y" * 5000))
    downloads = tmp_path / "downloads"
    with pytest.raises(ObjectTooLarge):
        run(store.get_to_file("files/big", downloads / "dest", max_bytes=4999))
    assert not downloads.exists() or list(downloads.iterdir()) == []  # no temp file either


def test_get_to_file_pinned_to_a_version_refuses_a_replaced_object(
    store: ObjectStore, tmp_path: Path
) -> None:
    first = run(store.put("files/pinned", b"version one"))
    pinned = first.etag or run(store.head("files/pinned")).etag
    run(store.get_to_file("files/pinned", tmp_path / "one", max_bytes=100, if_match=pinned))
    assert (tmp_path / "one").read_bytes() == b"version one"
    time.sleep(0.01)  # a new mtime for the filesystem store's etag
    run(store.put("files/pinned", b"version two, longer"))
    with pytest.raises(PreconditionFailed):
        run(store.get_to_file("files/pinned", tmp_path / "two", max_bytes=100, if_match=pinned))
    assert not (tmp_path / "two").exists()


def test_retention_deletes_only_windows_older_than_the_cut(store: ObjectStore) -> None:
    hotkey = "5Fhotkey"
    for window in range(5, 11):
        run(store.put(contribution_key(window, hotkey), b"grad"))
    run(store.put(protocol_prefix() + "state.json", b"no window"))
    deleted = run(delete_older_than(store, protocol_prefix(), keep_from_window=8))
    assert deleted == 3
    remaining = [i.key for i in run(list_all(store))]
    assert remaining == sorted(
        [contribution_key(w, hotkey) for w in (8, 9, 10)] + [protocol_prefix() + "state.json"]
    )
    assert run(list_all(store, contributions_prefix(7))) == []
