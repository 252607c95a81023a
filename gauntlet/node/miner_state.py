"""What a miner must not lose in a crash: its error-feedback buffer, step and window, and
the key of the sealed upload it has yet to reveal.

One safetensors file (the buffer's tensors, the counters and the key in its metadata),
replaced atomically each window *before* the window's upload is made visible, so a
miner killed at any instant restarts from the last complete state: never with a
residual that was already sent, and able to reveal an upload it made before dying.
It is the miner's own file: still, nothing is unpickled.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.torch import save as save_safetensors

from gauntlet.compress.dense import Delta
from gauntlet.storage.atomic_file import write_atomically

log = logging.getLogger(__name__)

FORMAT = "gauntlet-miner-state/1"


@dataclass(frozen=True)
class MinerState:
    window: int  # last window whose contribution was produced
    step: int  # global inner steps taken
    error_feedback: Delta  # empty until the first sparse contribution
    reveal_key: bytes = b""  # the key of window ``window``'s sealed upload (b"": none)

    @staticmethod
    def fresh() -> MinerState:
        return MinerState(window=-1, step=0, error_feedback={})


def state_path(state_dir: Path, hotkey: str) -> Path:
    return state_dir / f"miner-{hotkey}.safetensors"


def save_state(path: Path, state: MinerState, *, model_name: str) -> None:
    tensors = {name: t.detach().to("cpu").contiguous() for name, t in state.error_feedback.items()}
    metadata = {
        "format": FORMAT,
        "window": str(state.window),
        "step": str(state.step),
        "model": model_name,
        "reveal_key": state.reveal_key.hex(),
    }
    data = save_safetensors(tensors, metadata=metadata)
    write_atomically(path, lambda fh: fh.write(data))


def load_state(path: Path, *, model_name: str, shapes: dict[str, tuple[int, ...]]) -> MinerState:
    """The saved state, or a fresh one (logged) if there is none or it does not fit this model."""
    if not path.is_file():
        return MinerState.fresh()
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
            tensors = {name: fh.get_tensor(name) for name in fh.keys()}  # noqa: SIM118 - not a dict
    except (SafetensorError, OSError) as exc:
        log.warning("miner state %s is unreadable (%s); starting fresh", path, exc)
        return MinerState.fresh()
    if metadata.get("format") != FORMAT or metadata.get("model") != model_name:
        log.warning("miner state %s is for another format or model; starting fresh", path)
        return MinerState.fresh()
    if any(name not in shapes or tuple(t.shape) != shapes[name] for name, t in tensors.items()):
        log.warning("miner state %s does not match the model's shapes; starting fresh", path)
        return MinerState.fresh()
    key = metadata.get("reveal_key", "")
    return MinerState(
        window=int(metadata["window"]),
        step=int(metadata["step"]),
        error_feedback=tensors,
        reveal_key=bytes.fromhex(key) if len(key) == 64 else b"",
    )
