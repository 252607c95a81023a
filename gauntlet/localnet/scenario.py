"""Scenario files: the network a localnet run simulates, in TOML.

A scenario names its validators (with stakes) and its miners (with behaviours and
compute budgets), and may fix the run's windows, block time and seed, and override
any node setting. Unknown keys are errors, as in the node config. Example::

    name = "demo"
    windows = 8
    block_time = 0.5

    [[validators]]
    stake = 1000.0

    [[miners]]
    count = 3                 # three honest miners: miner0..miner2

    [[miners]]
    behaviour = "copycat"
    args = { target = "miner0" }   # node names in "target" become hotkeys

    [config.train]            # overrides for every node, like a config file
    batch_size = 8

See docs/localnet.md for every field and behaviour.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ValidatorSpec(_Strict):
    name: str = Field("", description="node name; empty: validator<i>")
    stake: float = Field(1000.0, gt=0, description="stake registered on the simulated chain")


class MinerSpec(_Strict):
    name: str = Field("", description="node name (count must be 1); empty: miner<i>")
    behaviour: str = Field("honest", description="a name from gauntlet.localnet.behaviours")
    count: int = Field(1, ge=1, description="how many miners of this kind")
    pages: int | None = Field(
        None,
        ge=1,
        description="compute budget: pages of its stream trained on per window (default: "
        "train.pages)",
    )
    args: dict[str, Any] = Field(default_factory=dict, description="behaviour keyword arguments")

    @model_validator(mode="after")
    def _named_once(self) -> MinerSpec:
        if self.name and self.count != 1:
            raise ValueError("a named miner spec must have count = 1")
        return self


class Scenario(_Strict):
    name: str = "default"
    description: str = ""
    seed: int | None = Field(None, description="model seed shared by every node (None: config)")
    windows: int | None = Field(None, ge=1, description="windows to run")
    block_time: float | None = Field(None, gt=0, description="seconds per simulated block")
    store: str | None = Field(None, pattern="^(filesystem|s3)$")
    validators: list[ValidatorSpec] = Field(default_factory=lambda: [ValidatorSpec()])
    miners: list[MinerSpec] = Field(default_factory=lambda: [MinerSpec(count=3)])
    config: dict[str, Any] = Field(default_factory=dict, description="node config overrides")

    @model_validator(mode="after")
    def _distinct_names(self) -> Scenario:
        names = [v.name for v in self.validators if v.name] + [
            m.name for m in self.miners if m.name
        ]
        if len(names) != len(set(names)):
            raise ValueError("node names must be distinct")
        if not self.validators:
            raise ValueError("a scenario needs at least one validator")
        return self


class ScenarioError(ValueError):
    pass


def load_scenario(path: str | Path) -> Scenario:
    """Parse and validate a scenario file; ScenarioError names the file and the problem."""
    try:
        with open(path, "rb") as f:
            return Scenario.model_validate(tomllib.load(f))
    except (OSError, tomllib.TOMLDecodeError, ValidationError) as exc:
        raise ScenarioError(f"scenario {path}: {exc}") from exc


def honest_scenario(miners: int, validators: int) -> Scenario:
    """The network used when no scenario file is given: honest miners, equal stakes."""
    return Scenario(
        name="honest",
        validators=[ValidatorSpec() for _ in range(validators)],
        miners=[MinerSpec(count=miners)],
    )


class MinerNode(_Strict):
    name: str
    behaviour: str
    pages: int | None
    args: dict[str, Any]


class ValidatorNode(_Strict):
    name: str
    stake: float


def expand(scenario: Scenario) -> tuple[list[ValidatorNode], list[MinerNode]]:
    """Every node of the scenario with its final name, in registration order."""
    validators = [
        ValidatorNode(name=v.name or f"validator{i}", stake=v.stake)
        for i, v in enumerate(scenario.validators)
    ]
    miners: list[MinerNode] = []
    for spec in scenario.miners:
        for _ in range(spec.count):
            name = spec.name or f"miner{len(miners)}"
            miners.append(
                MinerNode(
                    name=name,
                    behaviour=spec.behaviour,
                    pages=spec.pages,
                    args=spec.args,
                )
            )
    names = [n.name for n in validators] + [m.name for m in miners]
    if len(names) != len(set(names)):
        raise ScenarioError(f"scenario {scenario.name}: duplicate node names {sorted(names)}")
    for m in miners:
        target = m.args.get("target")
        if target is not None and target not in names:
            raise ScenarioError(f"miner {m.name}: target {target!r} is not a node of the scenario")
    return validators, miners
