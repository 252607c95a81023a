"""Reading a localnet run directory as a validator would: its recording, every sealed upload
opened with its revealed key, the lead's aggregation records and checkpoints
(bench/recorded_updates.py measures the uploads again with them)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gauntlet.compress.codec import Codec, build_codec, param_shapes
from gauntlet.config.schema import GauntletConfig
from gauntlet.data import PageDataset
from gauntlet.model import build_model
from gauntlet.node.checkpoints import load_checkpoint
from gauntlet.node.gather import Contribution, Decoder, open_payload
from gauntlet.storage.filesystem import FilesystemStore
from gauntlet.train.objective import training_plan
from protocol.container import Limits
from protocol.envelope import open_envelope
from protocol.errors import ProtocolError
from protocol.schemas import AggregationRecord
from protocol.sealed import open_reveal, open_sealed, unseal

MAX_BYTES = 1 << 30  # a local run's own files


def _recording(run: Path) -> dict[str, Any]:
    return json.loads((run / "report" / "recording.json").read_text())


def _hotkeys(run: Path) -> dict[str, int]:
    """hotkey -> uid, from the run's recording (every hotkey a journal saw)."""
    return {
        hotkey: int(uid)
        for journal in _recording(run)["journals"]
        for window in journal
        for uid, hotkey in window.get("hotkeys", {}).items()
    }


def passed_uids(run: Path) -> dict[int, set[int]]:
    """window -> the uids whose upload the first validator found ``ok`` (passed every
    check): those the aggregate's median norm and the alignment limit are taken over."""
    journal = _recording(run)["journals"][0]
    return {w["window"]: {p[0] for p in w["peers"] if p[1] == "ok"} for w in journal}


def open_uploads(run: Path, decoder: Decoder, netuid: int) -> dict[tuple[int, int], Contribution]:
    """(window, uid) -> every upload of the run that opens and validates as a validator's
    would: sealed object, revealed key, payload (uploads without a valid reveal, or that
    do not open, are left out)."""
    uid_of = _hotkeys(run)
    out = {}
    for sealed_file in sorted(run.glob("stores/*/gauntlet/v2/contributions/*/*.sealed")):
        window, hotkey = int(sealed_file.parent.name), sealed_file.stem
        reveal = sealed_file.parents[2] / "reveals" / sealed_file.parent.name / f"{hotkey}.json"
        if hotkey not in uid_of or not reveal.exists():
            continue
        try:
            key = open_reveal(
                reveal.read_bytes(), expected_hotkey=hotkey, expected_window=window, netuid=netuid
            )
            sealed = open_sealed(
                sealed_file.read_bytes(),
                expected_hotkey=hotkey,
                expected_window=window,
                expected_netuid=netuid,
                max_bytes=MAX_BYTES,
            )
            opened = open_payload(uid_of[hotkey], hotkey, window, unseal(sealed, key), decoder)
        except ProtocolError:  # a bad reveal or seal: no validator opens it either
            continue
        if opened.ok:
            out[(window, opened.uid)] = opened
    return out


def recorded_uids(run: Path) -> dict[int, list[int]]:
    """window -> the uids the lead's aggregation record of it names (each record checked as
    its signer's); two different records of one window are an error."""
    out: dict[int, list[int]] = {}
    for path in sorted(run.glob("stores/*/gauntlet/v2/aggregations/*/*.json")):
        window = int(path.parent.name)
        record = open_envelope(
            path.read_bytes(), AggregationRecord, expected_signer=path.stem, expected_window=window
        )
        uids = sorted(c.uid for c in record.contributions)
        if out.setdefault(window, uids) != uids:
            raise ValueError(f"window {window} has two records naming different uploads")
    return out


def rebuild_start(
    run: Path,
    records: dict[int, list[int]],
    uploads: dict[tuple[int, int], Contribution],
    first: int,
) -> int:
    """The window to rebuild from: 0 (the initial model) when every recorded upload is still
    in the run's buckets, else the earliest window at or before ``first`` with a checkpoint
    of the lead's after which they all are (the one before it too: its aggregate is the
    first window's last one). A run whose buckets pruned more than that cannot be
    measured from ``first``: SystemExit says so."""
    gone = [w for w, uids in records.items() if any((w, uid) not in uploads for uid in uids)]
    if not gone:
        return 0
    after = max(gone) + 2
    for window in sorted(checkpoint_windows(run)):
        if after <= window <= first:
            return window
    raise SystemExit(
        f"{run}: the buckets no longer hold window {max(gone)}'s recorded uploads and no "
        f"checkpoint of window {after}-{first} is left to start from: measure from a later "
        "window (--from) or keep more windows (storage retention)"
    )


def checkpoint_windows(run: Path) -> set[int]:
    """The windows the run's buckets hold a checkpoint of (θ at the start of the window)."""
    return {
        int(path.parents[1].name)
        for path in run.glob("stores/*/gauntlet/v2/checkpoints/*/*/model.safetensors")
    }


def load_run_checkpoint(
    run: Path, window: int, model: torch.nn.Module, config: GauntletConfig, dataset_id: str
) -> None:
    """θ_window into ``model`` from the run's checkpoint of it, verified as a node verifies
    the lead's (signed manifest, hashes, shapes, finite values)."""
    (path,) = sorted(
        run.glob(f"stores/*/gauntlet/v2/checkpoints/{window:010d}/*/model.safetensors")
    )
    bucket, hotkey = path.parents[5], path.parent.name
    store = FilesystemStore(bucket.parent, bucket.name, create=False)
    asyncio.run(
        load_checkpoint(
            store,
            hotkey,
            window,
            model,
            netuid=config.chain.netuid,
            model_name=config.model.name,
            dataset_id=dataset_id,
        )
    )


@dataclass(frozen=True)
class RecordedRun:
    """A run directory opened for measuring again: its nodes' configuration, a model of
    its kind at the initial weights, its codec, every upload opened, the lead's records, the
    uids that passed each window and the dataset."""

    path: Path
    config: GauntletConfig
    model: torch.nn.Module
    shapes: dict[str, tuple[int, ...]]
    codec: Codec
    decoder: Decoder
    uploads: dict[tuple[int, int], Contribution]
    records: dict[int, list[int]]
    passed: dict[int, set[int]]
    dataset: PageDataset

    def aggregate(self, window: int) -> dict[str, torch.Tensor] | None:
        """The window's aggregate as the nodes formed it from the lead's record, with the
        nodes' own codec call (None: no record or an empty one, so no outer step)."""
        used = [
            tensors
            for uid in self.records.get(window, [])
            if (tensors := self.uploads[(window, uid)].tensors) is not None
        ]
        if not used:
            return None
        return self.codec.decode_batch(
            used,
            self.shapes,
            normalise=self.config.compress.normalise,
            clip_norm=self.config.compress.clip_norm,
            device="cpu",
        )

    def start(self, first: int) -> int:
        """Puts the model at the window the rebuild starts from (:func:`rebuild_start`: the
        initial weights, or the lead's checkpoint) and returns that window."""
        window = rebuild_start(self.path, self.records, self.uploads, first)
        if window > 0:  # the buckets keep the last windows only: from the lead's checkpoint
            load_run_checkpoint(self.path, window, self.model, self.config, self.dataset.dataset_id)
        return window


def open_run(run: Path, dataset_dir: Path | None = None) -> RecordedRun:
    """``run`` (a localnet run directory) opened as :class:`RecordedRun`, on the CPU;
    ``dataset_dir``: where its dataset is now, if not where the run read it (a test's
    temporary directory is gone after the test; the same corpus made again is the same
    dataset, and a checkpoint of the run is only loaded for the dataset it names)."""
    config = GauntletConfig.model_validate(json.loads((run / "node-config.json").read_text()))
    model = build_model(config.model.name, config.model.seed)
    shapes = param_shapes(model)
    codec = build_codec(config.compress.codec_params())
    netuid = config.chain.netuid
    # the run's training plan: a superposition phase's uploads name it (protocol/plan.py)
    plan = training_plan(config.train).sha256
    decoder = Decoder(netuid, Limits(max_bytes=MAX_BYTES), codec, shapes, "cpu", plan)
    return RecordedRun(
        path=run,
        config=config,
        model=model,
        shapes=shapes,
        codec=codec,
        decoder=decoder,
        uploads=open_uploads(run, decoder, netuid),
        records=recorded_uids(run),
        passed=passed_uids(run),
        dataset=PageDataset(dataset_dir or Path(config.data.dataset_dir)),
    )
