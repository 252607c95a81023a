"""The ``localnet`` section of the configuration schema: the simulated subnet on one machine
(docs/localnet.md). Part of :class:`gauntlet.config.schema.GauntletConfig`; production nodes
ignore it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gauntlet.config.section import Section


class LocalnetConfig(Section):
    miners: int = Field(3, ge=1, description="Number of honest miners (without a scenario)")
    validators: int = Field(1, ge=1, description="Number of validators (without a scenario)")
    windows: int = Field(8, ge=1, description="Windows to run before stopping")
    store: Literal["filesystem", "s3"] = Field(
        "filesystem",
        description="Buckets: directories under the run, or one local S3 server (rclone) per node",
    )
    topk: int = Field(
        256,
        ge=1,
        description="compress.topk for the localnet's nodes: a 125k-parameter model needs a denser code than a large one",
    )
    miner_processes: int = Field(
        1,
        ge=1,
        description="Processes per miner; above 1 each miner runs under torchrun (gloo on CPU)",
    )
    block_time: float = Field(0.5, gt=0, description="Seconds per simulated block")
    fork_nodes: bool = Field(
        True,
        description="Start the chain and nodes as forks of the localnet process, which "
        "imports torch and the node code once: each start costs about 4 s less CPU (the 17 "
        "nodes of scenarios/adversarial.toml came up in 60 s on two cores without it). Each "
        "is still its own OS process. false: each a fresh interpreter, as on its own "
        "machine. Multi-process miners (torchrun) and S3 servers are always executed",
    )
    chain_outage_after: int = Field(
        0,
        ge=0,
        description="Fault injection: stop the chain after this many reported windows (0: never)",
    )
    chain_outage_seconds: float = Field(
        8.0, ge=0, description="Fault injection: how long the chain stays down before it restarts"
    )
    run_dir: str = Field(
        "runs/localnet", description="Directory for the run (chain db, stores, wallets, logs)"
    )
    scenario: str = Field(
        "",
        description="Scenario TOML (validators, miners and their behaviours, overrides; see "
        "scenarios/). Empty: 'miners' honest miners and 'validators' validators. Its windows, "
        "block_time and store apply unless set here explicitly",
    )
    kill_validator_after: int = Field(
        0,
        ge=0,
        description="Fault injection: SIGKILL the last validator mid-window after this many "
        "reported windows, then restart it (0: never)",
    )
    crash_points: str = Field(
        "",
        description="Fault injection: comma-separated crash points of the validator loop "
        "(gauntlet/node/crash_points.py). The last validator kills itself at the first, is "
        "restarted armed with the next, and so on; each must be reached within 4 windows "
        "of its start, or the run fails (a point never reached tests nothing); the run goes on "
        "past localnet.windows until the last has fired and the restarted validator has journalled "
        "a window",
    )
