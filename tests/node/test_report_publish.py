"""A judged window's report goes out even when the lead's artifacts could not."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest

from gauntlet.chain.base import ChainError
from gauntlet.node.report_publish import publish_window
from gauntlet.storage.base import AccessDenied
from gauntlet.storage.filesystem import FilesystemStore
from protocol.keys import window_report_key
from protocol.schemas import WindowReport

HOTKEY = "5Validator"


def report(window: int) -> WindowReport:
    return WindowReport(
        window=window, hotkey=HOTKEY, validation_loss_before=5.0, validation_loss_after=4.9,
        peers=[],
    )  # fmt: skip


class Node(SimpleNamespace):
    """The runtime's surface this step uses: its own store, hotkey and pruning."""

    def __init__(self, store: FilesystemStore) -> None:
        super().__init__(store=store, hotkey=HOTKEY, pruned=[])

    async def prune(self, window: int) -> None:
        self.pruned.append(window)


def published(store: FilesystemStore, window: int) -> WindowReport | None:
    path = store.base / window_report_key(window, HOTKEY)
    return WindowReport.model_validate_json(path.read_text()) if path.is_file() else None


@pytest.mark.parametrize("fault", [AccessDenied("bucket policy"), ChainError("timed out")])
def test_the_report_is_published_when_the_lead_artifacts_fail(
    tmp_path: Path, fault: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    store = FilesystemStore(tmp_path, "lead")
    node = Node(store)

    async def artifacts() -> None:
        raise fault

    asyncio.run(publish_window(node, report(3), artifacts))  # type: ignore[arg-type]
    assert published(store, 3) == report(3)
    assert node.pruned == [3]
    assert "could not publish the lead's artifacts" in caplog.text


def test_a_report_the_store_refuses_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Refusing(FilesystemStore):
        async def put(self, key: str, data: bytes, **kwargs: object) -> None:  # type: ignore[override]
            raise AccessDenied("read-only bucket")

    store = Refusing(tmp_path, "lead")
    node = Node(store)
    ran: list[int] = []

    async def artifacts() -> None:
        ran.append(1)

    asyncio.run(publish_window(node, report(4), artifacts))  # type: ignore[arg-type]
    assert ran == [1] and published(store, 4) is None and node.pruned == []
    assert "could not publish the report (forbidden)" in caplog.text
