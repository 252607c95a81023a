"""What every benchmark prints about the machine it ran on (import after the sys.path line)."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo, else what platform knows."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_info(device: str | None = None) -> dict[str, Any]:
    """Platform, Python and CPU; with a torch ``device`` also torch, its threads and the
    device's name (the GPU's, or the CPU's for ``cpu``)."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
    }
    if device is None:
        return info
    import torch

    is_cuda = torch.device(device).type == "cuda"
    return {
        **info,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "device_name": torch.cuda.get_device_name(device) if is_cuda else info["cpu_model"],
    }
