"""Versioned schemas (pydantic) for the artifacts nodes exchange.

Every model forbids unknown fields, so a peer cannot smuggle data past the
parser, and carries ``protocol_version`` so a node can reject foreign versions.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, RootModel, model_validator

from protocol.plan import PLAIN
from protocol.version import PROTOCOL_VERSION

Hotkey = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9]+$")]
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
# Fingerprints are compared across nodes and signed as JSON, where NaN/Inf do not exist.
Fingerprint = Annotated[list[FiniteFloat], Field(max_length=256)]
FileName = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._-]+$")]
MAX_PEERS = 1024


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DenseCodecParams(_Strict):
    """Every parameter's Δ as float32, named like the parameter."""

    name: Literal["dense"] = "dense"


class TopKCodecParams(_Strict):
    """Chunked top-k: per chunk of ``chunk`` (vectors) or ``chunk x chunk`` (matrices)
    elements, optionally DCT-II transformed, the ``topk`` largest-magnitude
    coefficients as (index, value) pairs. See docs/codec.md."""

    name: Literal["topk"] = "topk"
    # <= 256 so a 2-D chunk's flat index (< chunk**2 <= 65536) always fits a U16.
    chunk: int = Field(default=64, ge=1, le=256, description="chunk side length, elements")
    topk: int = Field(default=32, ge=1, le=65536, description="coefficients kept per chunk")
    dct: bool = Field(default=True, description="orthonormal DCT-II per chunk before top-k")
    quant: Literal["f32", "f16", "u8"] = Field(
        default="u8", description="value encoding; u8 is affine with a per-chunk lo/scale"
    )


class SparseCodecParams(_Strict):
    """Sparse values without a transform: per run of ``chunk`` consecutive elements of the
    flattened tensor, the ``topk`` largest in magnitude, their positions bit-packed
    (log2(chunk) bits each) and their values quantised to ``bits`` bits (a sign bit and
    ``bits - 1`` magnitude bits on a per-chunk grid). See docs/codec.md."""

    name: Literal["sparse"] = "sparse"
    chunk: int = Field(
        default=4096, ge=2, le=65536, description="elements per chunk, a power of two"
    )
    topk: int = Field(default=54, ge=1, le=65536, description="values kept per chunk")
    bits: int = Field(default=2, ge=1, le=8, description="bits per kept value, sign included")

    @model_validator(mode="after")
    def _power_of_two(self) -> SparseCodecParams:
        if self.chunk & (self.chunk - 1):
            raise ValueError("chunk must be a power of two (indices are log2(chunk) bits)")
        return self


_AnyCodec = Annotated[
    DenseCodecParams | TopKCodecParams | SparseCodecParams, Field(discriminator="name")
]


class CodecParams(RootModel[_AnyCodec]):
    """How the tensors of a contribution encode the pseudo-gradient.

    A discriminated union on ``name``; it serialises as the chosen member alone,
    so a dense manifest still reads ``{"name": "dense"}``. ``CodecParams()`` is dense.
    """

    model_config = ConfigDict(frozen=True)
    root: _AnyCodec = DenseCodecParams()

    @property
    def name(self) -> str:
        return self.root.name


class ContributionManifest(_Strict):
    """The signed description of one miner's contribution for one window."""

    protocol_version: int = PROTOCOL_VERSION
    kind: Literal["contribution"] = "contribution"
    netuid: int = Field(ge=0)
    window: int = Field(ge=0)
    uid: int = Field(ge=0)
    hotkey: Hotkey
    model: str = Field(max_length=64, description="named model config the tensors belong to")
    fingerprint: Fingerprint = Field(
        description="θ_w at window-seeded coordinates, to prove model sync"
    )
    page_ids: list[int] = Field(max_length=4096, description="pages trained on, in order")
    codec: CodecParams = CodecParams()
    plan_sha256: Sha256Hex = Field(
        PLAIN.sha256, description="digest of the training plan trained under (protocol/plan.py)"
    )
    tensors_sha256: Sha256Hex = Field(description="sha256 of the safetensors data section")


class WindowReport(_Strict):
    """A validator's public account of one window (for dashboards and the localnet)."""

    protocol_version: int = PROTOCOL_VERSION
    kind: Literal["window_report"] = "window_report"
    window: int = Field(ge=0)
    hotkey: Hotkey
    validation_loss_before: float = Field(description="next-token loss of θ_window")
    validation_loss_after: float = Field(description="next-token loss of θ_{window+1}")
    bag: int = Field(1, ge=1, description="the window's training phase: tokens per position")
    phase_loss_before: float | None = Field(
        None, description="superposition phase only: the phase's loss of θ_window"
    )
    phase_loss_after: float | None = Field(
        None, description="superposition phase only: the phase's loss of θ_{window+1}"
    )
    peers: list[PeerResult]


class PeerResult(_Strict):
    """One miner in a validator's window report (for people and tools; not consensus data)."""

    uid: int = Field(ge=0)
    hotkey: Hotkey
    status: str = Field(max_length=32, description="ok, missing, late, invalid, copy, replay, ...")
    reason: str = Field(default="", max_length=256, description="why a penalised outcome was given")
    evaluated: bool = Field(default=False, description="losses were measured this window")
    loss_before: float | None = Field(default=None, description="own pages, θ_w (nats/token)")
    loss_after: float | None = Field(default=None, description="own pages, θ_w with this Δ alone")
    own_improvement: float | None = None
    random_improvement: float | None = None
    own_improvement_se: float | None = Field(
        default=None, description="standard error of own_improvement over the paired batches"
    )
    random_improvement_se: float | None = Field(
        default=None, description="standard error of random_improvement over the paired batches"
    )
    own_advantage: float | None = Field(
        default=None,
        description="own-page improvement beyond the other helpful updates' mean on the same "
        "batches (None: no control; the indicator then compares with random pages)",
    )
    own_advantage_se: float | None = Field(
        default=None, description="standard error of own_advantage over the paired batches"
    )
    declared_pages: int | None = Field(
        default=None, ge=0, description="evaluated: the pages its contribution declared"
    )
    sync_observed: float | None = Field(
        default=None,
        description="this window's sync score, before the moving average (None: no "
        "fingerprint was read)",
    )
    sync: float | None = Field(default=None, description="sync score moving average in [0, 1]")
    uniqueness: float | None = Field(
        default=None, description="own-page advantage indicator average"
    )
    rating: float | None = Field(
        default=None, description="OpenSkill ordinal (mu - ordinal_z sigma)"
    )
    score: float = Field(default=0.0, description="final score")
    weight: float = 0.0


WindowReport.model_rebuild()


def _unique(values: list, what: str) -> None:
    if len(set(values)) != len(values):
        raise ValueError(f"duplicate {what}")


class PeerEntry(_Strict):
    uid: int = Field(ge=0)
    hotkey: Hotkey


class PeerSet(_Strict):
    """The miners whose contributions are aggregated, published by the lead validator.

    Takes effect at ``window`` and stays in force until a set with a later
    ``window`` is published (see :func:`protocol.peers.peer_set_in_force`).
    """

    protocol_version: int = PROTOCOL_VERSION
    kind: Literal["peer_set"] = "peer_set"
    netuid: int = Field(ge=0)
    window: int = Field(ge=0, description="first window whose contributions this set gathers")
    hotkey: Hotkey = Field(description="the lead validator that publishes and signs it")
    peers: list[PeerEntry] = Field(max_length=MAX_PEERS)

    @model_validator(mode="after")
    def _distinct(self) -> PeerSet:
        _unique([p.uid for p in self.peers], "uid in peer set")
        _unique([p.hotkey for p in self.peers], "hotkey in peer set")
        return self


# Contribution ledger (SPEC section 8.7): the record chain's fields. Optional in the schema
# so a reader still accepts a record or manifest written before the ledger; writers always
# set them.
SHARE_TOLERANCE = 1e-6  # how far a record's shares may sum from 1 (float rounding)


class RecordLink(_Strict):
    """Names one aggregation record: where it is (window, lead) and its exact bytes."""

    window: int = Field(ge=0, description="the window the record aggregated")
    hotkey: Hotkey = Field(description="the lead that signed it (whose bucket holds it)")
    sha256: Sha256Hex = Field(description="sha256 of the record's signed envelope as stored")


class AggregatedContribution(_Strict):
    uid: int = Field(ge=0)
    hotkey: Hotkey
    sha256: Sha256Hex = Field(description="sha256 of the whole payload object as stored")
    share: Annotated[float, Field(ge=0, le=1)] | None = Field(
        default=None,
        description="its part of the aggregate: the norm of its scaled update over the sum "
        "of those norms (the window's shares sum to 1)",
    )


class AggregationRecord(_Strict):
    """Exactly which contributions of ``window`` made θ_{window+1}; lets late joiners replay.
    Linked to the record before it, it is also a link of the contribution ledger."""

    protocol_version: int = PROTOCOL_VERSION
    kind: Literal["aggregation"] = "aggregation"
    netuid: int = Field(ge=0)
    window: int = Field(ge=0, description="the window whose contributions were aggregated")
    hotkey: Hotkey = Field(description="the lead validator that signs it")
    peer_set_window: int = Field(ge=0, description="window of the peer set in force")
    contributions: list[AggregatedContribution] = Field(max_length=MAX_PEERS)
    fingerprint: Fingerprint = Field(description="θ_{window+1} at the window+1 coordinates")
    previous: RecordLink | None = Field(
        default=None, description="the ledger's record before this one (null: the first)"
    )
    model_sha256: Sha256Hex | None = Field(
        default=None, description="model digest of θ_{window+1}, the model this record leads to"
    )
    validation_loss: FiniteFloat | None = Field(
        default=None, description="the lead's validation loss of θ_window (nats/token)"
    )

    @model_validator(mode="after")
    def _distinct(self) -> AggregationRecord:
        _unique([c.uid for c in self.contributions], "uid in aggregation record")
        _unique([c.hotkey for c in self.contributions], "hotkey in aggregation record")
        shares = [c.share for c in self.contributions if c.share is not None]
        if shares and len(shares) != len(self.contributions):
            raise ValueError("some contributions of the record have a share, others none")
        if shares and abs(sum(shares) - 1.0) > SHARE_TOLERANCE:
            raise ValueError(f"the record's shares sum to {sum(shares)}, not 1")
        if self.previous is not None and self.previous.window >= self.window:
            raise ValueError("a record links to a record of its own or a later window")
        return self


class Arrival(_Strict):
    """One sealed upload a validator observed in time (see protocol/SPEC.md, observed arrival)."""

    uid: int = Field(ge=0)
    hotkey: Hotkey
    sealed_sha256: Sha256Hex = Field(description="sha256 of the sealed object as downloaded")
    payload_sha256: Sha256Hex = Field(description="the payload the signed seal header promises")
    block: int = Field(ge=0, description="chain head when the validator first saw this version")


class ArrivalBook(_Strict):
    """A validator's signed account of the sealed uploads it observed before ``close_block``.

    ``complete`` says a poll round started at or after the deadline block and finished
    before the close, so every upload stored before the deadline is in the book.
    """

    protocol_version: int = PROTOCOL_VERSION
    kind: Literal["arrivals"] = "arrivals"
    netuid: int = Field(ge=0)
    window: int = Field(ge=0)
    hotkey: Hotkey = Field(description="the validator that observed and signs")
    close_block: int = Field(ge=0, description="observation closed at this block")
    complete: bool
    arrivals: list[Arrival] = Field(max_length=MAX_PEERS)

    @model_validator(mode="after")
    def _distinct(self) -> ArrivalBook:
        _unique([a.uid for a in self.arrivals], "uid in arrival book")
        return self


class TensorInfo(_Strict):
    name: str = Field(min_length=1, max_length=256)
    dtype: Literal["F32", "F16", "BF16", "I64", "I32", "I16", "U16", "U8", "I8"]
    shape: list[Annotated[int, Field(ge=0)]] = Field(max_length=8)


class CheckpointFile(_Strict):
    name: FileName = Field(description="object name under the checkpoint's key prefix")
    size: int = Field(ge=0)
    sha256: Sha256Hex


class CheckpointManifest(_Strict):
    """A full model snapshot θ_window: what it holds and how to check every file."""

    protocol_version: int = PROTOCOL_VERSION
    kind: Literal["checkpoint"] = "checkpoint"
    netuid: int = Field(ge=0)
    window: int = Field(ge=0, description="the model is θ at the start of this window")
    hotkey: Hotkey = Field(description="the lead validator that signs it")
    model: str = Field(max_length=64, description="named model config")
    dataset_id: str = Field(max_length=128)
    tensors: list[TensorInfo] = Field(max_length=65536)
    files: list[CheckpointFile] = Field(min_length=1, max_length=1024)
    ledger_head: RecordLink | None = Field(
        default=None,
        description="the last aggregation record applied before θ_window (null: none yet)",
    )

    @model_validator(mode="after")
    def _distinct(self) -> CheckpointManifest:
        _unique([t.name for t in self.tensors], "tensor name in checkpoint")
        _unique([f.name for f in self.files], "file name in checkpoint")
        if self.ledger_head is not None and self.ledger_head.window >= self.window:
            raise ValueError("a checkpoint's ledger head is not before its window")
        return self


class PeerState(_Strict):
    """What a validator remembers about one miner (keyed by hotkey: uids get recycled)."""

    hotkey: Hotkey
    uid: int = Field(ge=0, description="uid last seen for this hotkey")
    mu: FiniteFloat = Field(description="OpenSkill rating mean")
    sigma: FiniteFloat = Field(gt=0, description="OpenSkill rating uncertainty")
    moving_averages: dict[Annotated[str, Field(max_length=32)], FiniteFloat] = Field(
        default_factory=dict, max_length=32, description="named exponential moving averages"
    )
    score: FiniteFloat = 0.0
    evaluations: int = Field(default=0, ge=0, description="times this peer was evaluated")
    last_evaluated_window: int | None = Field(default=None, ge=0)


class ValidatorState(_Strict):
    """A validator's scoring state, written atomically every window and restored on start."""

    protocol_version: int = PROTOCOL_VERSION
    kind: Literal["validator_state"] = "validator_state"
    netuid: int = Field(ge=0)
    hotkey: Hotkey = Field(description="the validator this state belongs to")
    last_window: int | None = Field(default=None, ge=0, description="last window evaluated")
    windows_evaluated: int = Field(default=0, ge=0)
    peers: list[PeerState] = Field(default_factory=list, max_length=65536)

    @model_validator(mode="after")
    def _distinct(self) -> ValidatorState:
        _unique([p.hotkey for p in self.peers], "hotkey in validator state")
        return self
