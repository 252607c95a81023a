"""The one configuration schema: every hyperparameter and node setting, with its default
(the localnet's section is in :mod:`gauntlet.config.localnet_schema`).

Sources, lowest to highest priority: defaults here < config file (TOML/JSON) <
environment variables ``GAUNTLET_<SECTION>__<FIELD>`` < command-line flags
``--section.field``. Unknown keys are errors everywhere.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from gauntlet.config.localnet_schema import LocalnetConfig
from gauntlet.config.section import SECRET, Section
from gauntlet.score.config import ScoringConfig
from protocol.schemas import DenseCodecParams, SparseCodecParams, TopKCodecParams


class ChainConfig(Section):
    network: Literal["sim", "finney", "test", "local"] = Field(
        "sim",
        description="Which chain: 'sim' is the project's simulated chain service; others are Bittensor networks",
    )
    endpoint: str = Field(
        "http://127.0.0.1:9946",
        description="Chain endpoint: simulated chain URL, or a subtensor websocket for 'local'",
    )
    netuid: int = Field(1, ge=0, description="Subnet uid")
    blocks_per_window: int = Field(10, ge=1, description="Blocks per training window (B)")
    upload_grace_seconds: float = Field(
        1.0,
        ge=0,
        description="Grace after the upload deadline block (rounded up to whole blocks): an "
        "upload a validator observes before the head reaches deadline + grace counts; it also "
        "gives validators' last poll round time to finish",
    )
    reveal_blocks: int = Field(
        2,
        ge=1,
        description="Blocks after the observation closes in which miners publish the keys of "
        "their sealed uploads; a reveal fetched later does not count (the upload counts as late)",
    )
    record_blocks: int = Field(
        5,
        ge=0,
        description="Blocks after the reveal phase by which the lead's aggregation record must "
        "be stored; every node applies exactly that record, and with none in time no node "
        "changes the model for the window. Half a default window: the lead publishes right "
        "once its checks and evaluations of the window are done",
    )


class WalletConfig(Section):
    name: str = Field("default", description="Bittensor wallet (coldkey) name")
    hotkey: str = Field("default", description="Hotkey name inside the wallet")
    path: str = Field("~/.bittensor/wallets", description="Directory that holds wallets")


class StorageConfig(Section):
    backend: Literal["filesystem", "s3"] = Field(
        "filesystem", description="Where this node writes its artifacts"
    )
    root: str = Field(
        "~/.gauntlet/store",
        description="Filesystem backend: directory holding buckets (must be readable by peers)",
    )
    bucket: str = Field("", description="Bucket name; empty means derived from the hotkey")
    endpoint: str = Field(
        "", description="S3 backend: endpoint URL (R2: https://<account>.r2.cloudflarestorage.com)"
    )
    region: str = Field("auto", description="S3 backend: region ('auto' for R2)")
    path_style: bool = Field(
        False, description="S3 backend: path-style addressing (SeaweedFS, MinIO)"
    )
    write_access_key_id: str = Field(
        "", description="S3 backend: key with write access to this node's bucket"
    )
    write_secret_access_key: str = Field(
        "", description="S3 backend: secret of the write key", json_schema_extra=SECRET
    )
    read_access_key_id: str = Field(
        "", description="S3 backend: read-only key published in the chain commitment"
    )
    read_secret_access_key: str = Field(
        "", description="S3 backend: secret of the read-only key", json_schema_extra=SECRET
    )
    retention_windows: int = Field(
        32, ge=1, description="Delete own artifacts older than this many windows"
    )
    max_payload_bytes: int = Field(
        64 * 2**20, ge=1024, description="Largest contribution a node will download"
    )
    peer_private_endpoints: bool = Field(
        False,
        description="Real networks: read peers' S3 endpoints on loopback, link-local and private "
        "addresses too (sim and local always do)",
    )


class CompressConfig(Section):
    """The contribution codec (every node of a network must agree) and aggregation."""

    codec: Literal["topk", "sparse", "dense"] = Field(
        "topk", description="Pseudo-gradient codec on the wire"
    )
    chunk: int = Field(
        64, ge=1, le=256, description="Top-k: chunk side (chunk x chunk blocks for matrices)"
    )
    topk: int = Field(32, ge=1, description="Top-k: coefficients kept per chunk")
    dct: bool = Field(True, description="Top-k: orthonormal DCT-II per chunk before selecting")
    quant: Literal["u8", "f16", "f32"] = Field(
        "u8", description="Top-k: how kept values are encoded"
    )
    sparse_chunk: int = Field(
        4096, ge=2, le=65536, description="Sparse: elements per chunk (a power of two)"
    )
    sparse_topk: int = Field(54, ge=1, description="Sparse: values kept per chunk")
    sparse_bits: int = Field(2, ge=1, le=8, description="Sparse: bits per kept value")
    error_decay: float = Field(
        1.0,
        ge=0,
        le=1,
        description="Miner: share of the untransmitted residual carried to the next window",
    )
    normalise: Literal["per_peer", "clip", "none"] = Field(
        "per_peer",
        description="Aggregation: scale each peer's update to the median norm, clip it, or neither",
    )
    clip_norm: float = Field(
        1.0, gt=0, description="Aggregation: max update norm when normalise=clip"
    )

    @model_validator(mode="after")
    def _sparse_chunk_is_a_power_of_two(self) -> CompressConfig:
        if self.sparse_chunk & (self.sparse_chunk - 1):
            raise ValueError("compress.sparse_chunk must be a power of two")
        return self

    def codec_params(self) -> DenseCodecParams | TopKCodecParams | SparseCodecParams:
        if self.codec == "dense":
            return DenseCodecParams()
        if self.codec == "sparse":
            return SparseCodecParams(
                chunk=self.sparse_chunk, topk=self.sparse_topk, bits=self.sparse_bits
            )
        return TopKCodecParams(chunk=self.chunk, topk=self.topk, dct=self.dct, quant=self.quant)


class ModelConfig(Section):
    name: str = Field("tiny", description="Named model config (gauntlet.model.MODEL_CONFIGS)")
    seed: int = Field(0, description="Seed of the initial weights; every node must use the same")


class DataConfig(Section):
    dataset_dir: str = Field(
        "~/.gauntlet/data/stdlib",
        description="Prepared token dataset (built from local text if missing)",
    )
    page_tokens: int = Field(
        4096, ge=64, description="Tokens per data page when preparing a dataset"
    )
    max_tokens: int = Field(
        4_000_000,
        ge=0,
        description="Cap on tokens of a prepared dataset, by `gauntlet data prepare` (any "
        "--source) and by a node building the default one; a larger corpus is cut there, "
        "with a warning (0: no cap)",
    )
    pages_per_window: int = Field(
        16,
        ge=1,
        le=4096,
        description="Length of each miner's ordered page stream per window: a miner trains on "
        "a prefix of it (as many pages as its compute allows: train.pages) and declares how "
        "many; 16 leaves room for hosts 8x faster than the default budget",
    )


class TrainConfig(Section):
    device: str = Field("cpu", description="Torch device: cpu, cuda, cuda:N")
    pages: int = Field(
        2,
        ge=1,
        description="Pages of the window's stream this miner trains on (its compute budget; at "
        "most data.pages_per_window). More pages, more data processed: what validators reward",
    )
    upload_margin: float = Field(
        2.0,
        ge=1,
        description="Training stops this many times the measured upload time (compress, "
        "sign, store) before the window ends, and the miner declares the pages it trained in "
        "full by then: a budget its host cannot finish in a window costs pages, not the "
        "whole window. 2: an upload twice as slow as the recent ones still lands in time. "
        "Before the first upload is measured, one block's time is kept",
    )
    inner_steps: int = Field(
        0,
        ge=0,
        description="Optimizer steps per window; 0: one pass over the trained pages (each "
        "step one batch), so compute follows the pages processed",
    )
    batch_size: int = Field(8, ge=1, description="Sequences per inner step")
    seq_len: int = Field(128, ge=8, description="Tokens per training sequence")
    inner_optimizer: Literal["adamw", "sgd"] = Field("adamw", description="Inner optimizer")
    inner_lr: float = Field(2e-3, gt=0, description="Peak inner learning rate")
    lr_warmup_steps: int = Field(
        0, ge=0, description="Inner steps of linear learning-rate warm-up (global count)"
    )
    lr_decay_steps: int = Field(
        0, ge=0, description="Inner steps of cosine decay after warm-up (0: constant learning rate)"
    )
    lr_min_ratio: float = Field(
        0.1, ge=0, le=1, description="Final learning rate of the cosine, as a fraction of the peak"
    )
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum (inner_optimizer=sgd)")
    weight_decay: float = Field(0.0, ge=0, description="Inner optimizer weight decay")
    grad_clip: float = Field(1.0, gt=0, description="Max global gradient norm per inner step")
    outer_lr: float = Field(
        1.0, gt=0, description="Outer step size applied to the mean pseudo-gradient"
    )
    start_window: int = Field(
        0,
        ge=0,
        description="First window of the run: the model at this window is the seeded initial model",
    )
    superposition_bag: int = Field(
        1,
        ge=1,
        le=64,
        description="Token-Superposition Training (docs/tst.md), a network-wide setting: "
        "tokens averaged into each input position, and predicted at each output, in the "
        "windows before superposition_until; page streams grow by the same factor. Every node "
        "of a network must agree (contributions carry the plan's digest). 1: plain training",
    )
    superposition_until: int = Field(
        0,
        ge=0,
        description="First window of plain next-token training after the superposition "
        "phase (the switch; the paper runs 0.2 to 0.4 of the steps in superposition). "
        "0: no superposition phase",
    )
    compile: bool = Field(
        False, description="torch.compile each transformer block (needs a C compiler)"
    )
    torch_threads: int = Field(0, ge=0, description="torch.set_num_threads (0: torch's default)")


class ValidatorConfig(Section):
    eval_batch_size: int = Field(8, ge=1, description="Sequences per evaluation batch")
    eval_batches: int = Field(
        2,
        ge=1,
        description="Batches per loss measurement. A peer takes four measurements (own pages "
        "before and after, random pages after, its control): at 2 that is two passes of the "
        "4 batches it was until 2026-12-05 (issue 18), with scoring.eval_budget doubled to 16; "
        "the cost, the wrong-data miner's advantages a fifth noisier (SD 0.0121 -> 0.0147 in "
        "live runs) and no adversary paid above the honest rate per page in nine "
        "(docs/validator.md, 'Two passes a peer'; 4 buys the separation back)",
    )
    member_check_batches: int = Field(
        2,
        ge=1,
        description="Lead only: batches per loss measurement in the peer-set members' loss "
        "check, which every miner waits for before training the next window (the record "
        "follows it). The check is a gate (lower the loss on its own pages, do not raise "
        "it on random ones by more), not a score: 2 batches and no control pass "
        "cut it from 4 passes of 4 batches per member to 3 of 2 batches (the record came "
        "3.2 s into a 5 s localnet window on 2 cores, and miners lost the window). The "
        "window's evaluation still measures the chosen peers with eval_batches",
    )
    peer_set_size: int = Field(
        16,
        ge=1,
        description="Lead only: miners in the published peer set (highest final scores > 0 "
        "among those that passed every check in the window just scored); only their "
        "contributions are aggregated",
    )
    peer_set_min_score_ratio: float = Field(
        0.2,
        ge=0.0,
        le=1.0,
        description="Lead only: a miner enters the peer set only with a score of at least this "
        "fraction of the best; aggregation gives every member an equal say, so a miner scoring "
        "a sliver of the best (e.g. caught only statistically) stays out (0: any score > 0)",
    )
    peer_set_lag: int = Field(
        3,
        ge=2,
        description="Lead only: the peer set scored after window w takes effect at w + lag "
        "(it must be stored before window w + lag - 1 ends to count). The lead scores w "
        "during w + 1 and publishes the set after its whole evaluation: with 2 the set "
        "had to be out by the end of w + 1, and on the adaptive localnet (2 cores, 18 "
        "nodes) 9 of 13 and 11 of 12 sets missed that, so nodes aggregated everyone; 3 "
        "leaves a window of slack. Each window of lag keeps a newcomer out of the "
        "aggregate a window longer (the members' loss check guards it meanwhile)",
    )
    random_pages: int = Field(
        8,
        ge=1,
        description="Secret random pages per window: the rating's match score (each update's "
        "gain on them), the controls' strength, and the own-vs-random fallback when no control "
        "exists; more than a miner's own pages, so their draw adds little noise common to "
        "every peer",
    )
    own_pages: int = Field(
        4,
        ge=1,
        description="Pages of a miner's declared ones on which its own-page improvement is "
        "measured, drawn with the validator's secret: a miner declaring pages it did not "
        "train on is caught on those with probability about the untrained share. The "
        "measurement is eval_batches batches whatever the count, so more pages cost nothing "
        "and spread the same tokens over more pages: less of the page-to-page variation "
        "that made a wrong-data miner look trained in some windows (2 before issue 14's fix)",
    )
    measure_novel: bool = Field(
        True,
        description="Measure each update with no more alignment (cosine) with the last "
        "aggregate than the median of the window's measured updates (or their median "
        "weighted by this validator's weights, what it pays, where lower), at its own length: "
        "that step is free to any miner. A miner that trained one page and made the last "
        "aggregate 0.85 of its upload (under the replay check's R² of 0.9) rated like an "
        "honest miner with two pages when measured as sent (scenarios/adaptive.toml, the "
        'boost behaviour; docs/scoring.md, "What is new"). Costs reading each evaluated '
        "update's cosine with the last aggregate from its payload (no decode) and lowering "
        "it in the decode that applies it. false: measure as sent",
    )
    novel_quantile: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="With measure_novel, the quantile of the window's measured alignments "
        "(and of the same weighted by this validator's weights, what it pays; the lower of "
        "the two) that no update is measured above. Lifting the limit takes 1 - "
        "novel_quantile of the measured hotkeys and of the pay; a lower quantile lowers "
        'more honest updates (docs/scoring.md, "What is new")',
    )
    measure_thin: int = Field(
        1,
        ge=1,
        description="Measure each update kept to the largest 1/measure_thin of the "
        "coefficients the codec keeps a chunk, at its own norm (before the alignment limit "
        "and the aggregate's scale), so that a miner sending only its largest coefficients "
        "(the thin behaviour) gains nothing from the thinning itself. 1: as sent. Not the "
        "default: at 4 it also thins away what the own-page test sees of a large honest "
        "update (the adaptive scenario's 5-page miner had a uniqueness average of -0.63 in "
        "window 7 and earned 0.005), and a thin miner still gains by what it carries from "
        "window to window (docs/runs.md, Thinning)",
    )
    own_step: float = Field(
        1.0,
        gt=0,
        le=1,
        description="Measure each evaluated update on its own pages, and as a control on "
        "others', at this fraction of the scale the aggregate gives it; the lead's member "
        "check keeps the aggregate's scale. Tried with random_step at 0.5 (docs/runs.md, "
        "Thinning): the thin miners fell to about the honest rate per page and boost to 0, "
        "but a lazy miner (5 pages declared, 1 trained) passed the own-page test and earned "
        "0.068, and the honest miners' incentive followed their pages less (Spearman 0.70). "
        "1: the aggregate's scale",
    )
    random_step: float = Field(
        1.0,
        gt=0,
        le=1,
        description="Measure each evaluated update's gain on the secret random pages (what "
        "its rating ranks) at this fraction of the scale the aggregate gives it (per_peer: "
        "the window's median norm); the lead's member check keeps the aggregate's scale. "
        "Applied alone at the median norm an update takes a longer step than its share of "
        "the network's (the aggregate, a mean, was 0.53-0.80 of the median norm in the "
        "localnet runs), where a small update overshoots and one sent as only its largest "
        "coefficients (the thin behaviour) overshoots less. Tried at 0.5 (docs/runs.md, "
        "Thinning): the thin 2-page miner's share of windows 20-39 fell from 0.17-0.19 to "
        "0.09-0.13, the thin 1-page miner's did not, boost earned 0.086 and the honest "
        "ranking weakened (Spearman 0.60). Costs one more apply of the update, no forward "
        "pass. 1: the aggregate's scale",
    )
    control_updates: int = Field(
        4,
        ge=0,
        description="Other helpful updates of the window applied, one at a time, to a "
        "miner's own pages as the control of its own-page advantage. The own batches are "
        "shared out among them (at most one control per batch), so the control costs one "
        "pass over those pages however many there are, and more of them average out more of "
        "one update's quirks: which update served as the control moved a wrong-data miner's "
        "advantage more than the batches did (issue 18). 0: compare with the random pages "
        "instead, which differ from the own pages in how easy they are: on the adversarial "
        "scenario that gave a wrong-data miner gaps of +0.02 to +0.05 in some windows and 4 "
        "(of 100) of the incentive in one run",
    )
    validation_pages: int = Field(
        4, ge=1, description="Held-out pages for the global model's validation loss"
    )
    weights_interval: int = Field(
        1, ge=1, description="Set weights on chain every this many windows"
    )
    eval_secret: str = Field(
        "",
        pattern=r"^([0-9a-fA-F]{2})*$",
        description="Hex secret seeding peer selection and random pages (empty: random, kept in state_dir)",
        json_schema_extra=SECRET,
    )
    poll_seconds: float = Field(
        0.25,
        gt=0,
        description="Pause between observation rounds (a HEAD per miner per round, a GET for "
        "each new version). Rounds must be shorter than the grace so one starts after the "
        "deadline and ends before the close: see docs/benchmarks.md for the cost at 256 uids",
    )
    checkpoint_interval: int = Field(
        10,
        ge=0,
        description="Lead validator: publish a checkpoint every this many windows (0: never)",
    )
    payloads_in_flight: int = Field(
        4,
        ge=1,
        description="Sealed uploads held in memory at once while the observer checks them "
        "(each up to the payload cap): downloads stream to the spool in state_dir, so the "
        "observer's memory is this many payloads whatever the number of miners. 4 keeps a "
        "256-miner round's header checks (a sha256 pass each) on a few cores",
    )


class NodeConfig(Section):
    state_dir: str = Field(
        "~/.gauntlet/state", description="Where the node keeps its state between runs"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log verbosity"
    )
    max_windows: int = Field(
        0, ge=0, description="Stop after this many windows (0: run until stopped)"
    )
    lease_windows: int = Field(
        3,
        ge=1,
        description="Windows after its last renewal that a node's uploader lease keeps "
        "another node on the same hotkey (another machine or state directory) from starting. "
        "A node renews it once per window, so 3 rides out a slow window or a short store "
        "outage, while a crashed node on another machine blocks its replacement for only "
        "3 windows (the same node restarting is never blocked)",
    )
    take_over_lease: bool = Field(
        False,
        description="Start even though another node on this hotkey renewed its uploader lease "
        "recently; that node stops at its next renewal. Off, so that a second node started "
        "by mistake is refused instead of overwriting the first one's uploads; set it only "
        "to move a running node on purpose",
    )


class TelemetryConfig(Section):
    """The node's HTTP server: Prometheus metrics, and the status page on a validator."""

    metrics_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Port serving /metrics (and a validator's status page at /); 0: no server",
    )
    metrics_host: str = Field(
        "127.0.0.1",
        description="Address the metrics server binds: 127.0.0.1 keeps it on this host, 0.0.0.0 opens it to the network",
    )
    status_history: int = Field(
        20, ge=1, le=1000, description="Validator status page: windows of per-uid history shown"
    )


class GauntletConfig(Section):
    """Everything a node needs; one instance per process."""

    chain: ChainConfig = ChainConfig()
    wallet: WalletConfig = WalletConfig()
    storage: StorageConfig = StorageConfig()
    model: ModelConfig = ModelConfig()
    compress: CompressConfig = CompressConfig()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    validator: ValidatorConfig = ValidatorConfig()
    node: NodeConfig = NodeConfig()
    telemetry: TelemetryConfig = TelemetryConfig()
    scoring: ScoringConfig = ScoringConfig()
    localnet: LocalnetConfig = LocalnetConfig()

    @model_validator(mode="after")
    def _replayable(self) -> GauntletConfig:
        # A late node loads the newest checkpoint and replays the windows after it, so the
        # contributions of those windows must still be stored when it does.
        interval = self.validator.checkpoint_interval
        if interval and interval >= self.storage.retention_windows:
            raise ValueError(
                f"validator.checkpoint_interval ({interval}) must be below storage.retention_windows "
                f"({self.storage.retention_windows}) so late nodes can replay from a checkpoint"
            )
        return self


__all__ = [
    "SECRET", "ChainConfig", "CompressConfig", "DataConfig", "GauntletConfig", "LocalnetConfig",
    "ModelConfig", "NodeConfig", "Section", "StorageConfig", "TelemetryConfig", "TrainConfig",
    "ValidatorConfig", "WalletConfig",
]  # fmt: skip
