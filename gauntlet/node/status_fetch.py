"""``gauntlet status``'s I/O: the metagraph from the chain, and each validator's public
window reports from the bucket its chain commitment names. The logic is
:mod:`gauntlet.node.status_report`; nothing here needs a wallet.
"""

from __future__ import annotations

from pydantic import ValidationError

from gauntlet.chain.base import Metagraph, Neuron
from gauntlet.chain.factory import build_chain
from gauntlet.config.schema import GauntletConfig
from gauntlet.node.peers import PeerDirectory
from gauntlet.node.status_report import UidStatus, uid_status, validators
from gauntlet.storage.base import ObjectStore, StorageError
from protocol.keys import reports_prefix, window_of_key, window_report_key
from protocol.schemas import WindowReport

MAX_REPORT_BYTES = 4 * 2**20  # a report lists every uid of a subnet: well under this


class StatusError(RuntimeError):
    """The uid or hotkey asked about is not on the subnet."""


def find_neuron(metagraph: Metagraph, *, uid: int | None, hotkey: str | None) -> Neuron:
    neuron = metagraph.by_uid(uid) if uid is not None else metagraph.by_hotkey(hotkey or "")
    if neuron is None:
        what = f"uid {uid}" if uid is not None else f"hotkey {hotkey}"
        raise StatusError(f"{what} is not registered on netuid {metagraph.netuid}")
    return neuron


async def _report_windows(store: ObjectStore, hotkey: str) -> list[int]:
    windows = []
    async for info in store.list(reports_prefix()):
        window = window_of_key(info.key)
        if window is not None and info.key == window_report_key(window, hotkey):
            windows.append(window)
    return sorted(windows)


async def read_reports(
    store: ObjectStore, hotkey: str, newest: int
) -> tuple[dict[int, WindowReport], list[str]]:
    """A validator's reports, at most the ``newest`` windows it has; problems as notes."""
    reports: dict[int, WindowReport] = {}
    notes: list[str] = []
    for window in (await _report_windows(store, hotkey))[-newest:]:
        try:
            raw = await store.get(window_report_key(window, hotkey), max_bytes=MAX_REPORT_BYTES)
            report = WindowReport.model_validate_json(raw)
        except StorageError as exc:
            notes.append(f"validator {hotkey}: report of window {window} unreadable ({exc.reason})")
            continue
        except ValidationError as exc:
            notes.append(
                f"validator {hotkey}: report of window {window} is malformed ({exc.error_count()} errors)"
            )
            continue
        if report.window == window and report.hotkey == hotkey:
            reports[window] = report
    return reports, notes


async def fetch_status(
    config: GauntletConfig, *, uid: int | None = None, hotkey: str | None = None, windows: int = 5
) -> UidStatus:
    """The status of ``uid`` (or ``hotkey``) over the last ``windows`` reported windows."""
    chain = build_chain(config.chain, None)
    directory = PeerDirectory.for_config(config)
    try:
        metagraph = await chain.metagraph()
        commitments = await chain.commitments()
        target = find_neuron(metagraph, uid=uid, hotkey=hotkey)
        reports: dict[int, dict[int, WindowReport]] = {}
        notes: list[str] = []
        for v in validators(metagraph):
            store = directory.store_for(v.hotkey, commitments.get(v.hotkey))
            if store is None:
                notes.append(f"validator {v.uid} ({v.hotkey}): no readable bucket commitment")
                continue
            try:
                reports[v.uid], problems = await read_reports(store, v.hotkey, windows)
            except StorageError as exc:
                notes.append(
                    f"validator {v.uid} ({v.hotkey}): bucket unreadable ({exc.reason}: {exc})"
                )
                continue
            notes += problems
        return uid_status(metagraph, target, reports, windows=windows, notes=notes)
    finally:
        await directory.close()
        await chain.close()
