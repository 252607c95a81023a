"""Versioned schemas (pydantic) for the artifacts nodes exchange.

Every model forbids unknown fields, so a peer cannot smuggle data past the
parser, and carries ``protocol_version`` so a node can reject foreign versions.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from protocol.version import PROTOCOL_VERSION

Hotkey = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9]+$")]
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CodecParams(_Strict):
    """How the tensors of a contribution encode the pseudo-gradient."""

    name: Literal["dense"] = "dense"


class ContributionManifest(_Strict):
    """The signed description of one miner's contribution for one window."""

    protocol_version: int = PROTOCOL_VERSION
    kind: Literal["contribution"] = "contribution"
    netuid: int = Field(ge=0)
    window: int = Field(ge=0)
    uid: int = Field(ge=0)
    hotkey: Hotkey
    model: str = Field(max_length=64, description="named model config the tensors belong to")
    fingerprint: list[float] = Field(
        max_length=256, description="θ_w at window-seeded coordinates, to prove model sync"
    )
    page_ids: list[int] = Field(max_length=4096, description="pages trained on, in order")
    codec: CodecParams = CodecParams()
    tensors_sha256: Sha256Hex = Field(description="sha256 of the safetensors data section")


class WindowReport(_Strict):
    """A validator's public account of one window (for dashboards and the localnet)."""

    protocol_version: int = PROTOCOL_VERSION
    kind: Literal["window_report"] = "window_report"
    window: int = Field(ge=0)
    hotkey: Hotkey
    validation_loss_before: float
    validation_loss_after: float
    peers: list[PeerResult]


class PeerResult(_Strict):
    uid: int = Field(ge=0)
    hotkey: Hotkey
    status: str = Field(max_length=32, description="ok, missing, late, invalid, ...")
    loss_before: float | None = None
    loss_after: float | None = None
    score: float = 0.0
    weight: float = 0.0


WindowReport.model_rebuild()
