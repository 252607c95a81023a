"""Scenario files: parsing, expansion into nodes, and how a scenario shapes the run's config."""

from __future__ import annotations

from pathlib import Path

import pytest

from gauntlet.config.schema import GauntletConfig, LocalnetConfig, ModelConfig, TrainConfig
from gauntlet.localnet.adaptive import ADAPTIVE, MEASURED, OPERATED, PARTNERED, TIMED
from gauntlet.localnet.behaviours import BEHAVIOURS, make_behaviour
from gauntlet.localnet.gate_rider import GateRider
from gauntlet.localnet.orchestrator import apply_scenario
from gauntlet.localnet.scenario import (
    MinerSpec,
    Scenario,
    ScenarioError,
    ValidatorSpec,
    expand,
    honest_scenario,
    load_scenario,
)
from gauntlet.localnet.selective import SelectiveServe
from gauntlet.localnet.skim import Skim
from gauntlet.localnet.tarpit import Tarpit
from gauntlet.score.config import ScoringConfig

SCENARIO_DIR = Path(__file__).resolve().parents[2] / "scenarios"
SCENARIOS = sorted(SCENARIO_DIR.glob("*.toml"))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.toml"
    path.write_text(text)
    return path


def test_the_repository_ships_scenarios() -> None:
    assert {p.name for p in SCENARIOS} >= {"quick.toml", "adversarial.toml"}


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.name for p in SCENARIOS])
def test_every_shipped_scenario_parses_and_expands(path: Path) -> None:
    scenario = load_scenario(path)
    validators, miners = expand(scenario)
    names = [v.name for v in validators] + [m.name for m in miners]
    assert len(names) == len(set(names))
    assert validators and miners
    for miner in miners:
        assert miner.behaviour in BEHAVIOURS
        target = miner.args.get("target")
        if miner.behaviour == "copycat":
            assert target in names and target != miner.name
        # The orchestrator swaps node names for hotkeys; any string builds the behaviour.
        make_behaviour(miner.behaviour, miner.args)


def test_the_adversarial_scenario_has_one_miner_of_each_classic_behaviour() -> None:
    _, miners = expand(load_scenario(SCENARIO_DIR / "adversarial.toml"))
    behaviours = [m.behaviour for m in miners]
    assert behaviours.count("honest") == 3
    others = {cls.name for cls in ADAPTIVE + PARTNERED + OPERATED + TIMED + MEASURED} | {
        Tarpit.name,
        SelectiveServe.name,
        GateRider.name,
        Skim.name,
    }
    classic = set(BEHAVIOURS) - {"honest"} - others
    # and the attack on the wrong-data miner's defence (the control) beside it
    assert sorted(b for b in behaviours if b != "honest") == sorted(classic | {"weak-control"})


def test_the_thin_scenario_sets_thin_miners_of_one_and_two_pages_beside_five_honest() -> None:
    _, miners = expand(load_scenario(SCENARIO_DIR / "thin.toml"))
    assert sorted(m.pages for m in miners if m.behaviour == "honest") == [1, 2, 3, 4, 5]
    thin = [make_behaviour(m.behaviour, m.args) for m in miners if m.behaviour == "thin"]
    assert sorted(m.pages for m in miners if m.behaviour == "thin") == [1, 2]
    assert all(t.factor == 4 for t in thin)  # type: ignore[attr-defined]


def test_the_selective_scenario_sets_one_selective_miner_against_three_honest_budgets() -> None:
    _, miners = expand(load_scenario(SCENARIO_DIR / "selective.toml"))
    assert sorted(m.pages for m in miners if m.behaviour == "honest") == [2, 3, 5]
    assert [m.behaviour for m in miners].count("selective-serve") == 1


def test_the_gate_rider_scenario_sets_two_riders_without_a_margin_against_three_budgets() -> None:
    _, miners = expand(load_scenario(SCENARIO_DIR / "gate-rider.toml"))
    assert sorted(m.pages for m in miners if m.behaviour == "honest") == [2, 3, 5]
    riders = [make_behaviour(m.behaviour, m.args) for m in miners if m.behaviour == "gate-rider"]
    assert len(riders) == 2
    assert all(r.margin == 0.0 and r.honest_windows == 4 for r in riders)  # type: ignore[attr-defined]


def test_the_tarpit_scenario_sets_both_kinds_of_tarpit_against_three_honest_budgets() -> None:
    _, miners = expand(load_scenario(SCENARIO_DIR / "tarpit.toml"))
    assert sorted(m.pages for m in miners if m.behaviour == "honest") == [2, 3, 5]
    modes = sorted(m.args["mode"] for m in miners if m.behaviour == "tarpit")
    assert modes == ["get", "get", "head"]
    for m in miners:
        make_behaviour(m.behaviour, m.args)  # every one builds with its arguments


def test_the_adaptive_scenario_has_every_adaptive_behaviour_and_five_honest_budgets() -> None:
    _, miners = expand(load_scenario(SCENARIO_DIR / "adaptive.toml"))
    assert {m.behaviour for m in miners} - {"honest"} == {cls.name for cls in ADAPTIVE}
    budgets = sorted(m.pages for m in miners if m.behaviour == "honest")
    assert len(budgets) >= 5 and budgets[-1] >= 5 * budgets[0]


def test_the_coast_scenario_sets_coasters_of_the_top_budget_beside_every_honest_budget() -> None:
    _, miners = expand(load_scenario(SCENARIO_DIR / "coast.toml"))
    honest = sorted(m.pages or 0 for m in miners if m.behaviour == "honest")
    coasters = [m for m in miners if m.behaviour == "coast"]
    assert honest == [1, 2, 3, 4, 5] and len(coasters) == 3
    # each coasts down to a budget an honest miner has, from the top one
    assert all(m.pages == 5 and m.args["coast"] in honest for m in coasters)


def test_the_burst_scenario_works_in_bursts_as_long_as_the_ratings_memory() -> None:
    """The attack on `scoring.rating_memory` must follow its default: a cycle (full work,
    then less) as long as the memory, repeated at least twice in the run, from the top
    budget down to budgets honest miners have."""
    scenario = load_scenario(SCENARIO_DIR / "burst.toml")
    _, miners = expand(scenario)
    honest = sorted(m.pages or 0 for m in miners if m.behaviour == "honest")
    bursts = [m for m in miners if m.behaviour == "coast"]
    assert honest == [1, 2, 3, 4, 5] and len(bursts) == 2
    memory = ScoringConfig().rating_memory
    for m in bursts:
        period = m.args["full_windows"] + m.args["coast_windows"]
        assert period == memory and m.pages == 5 and m.args["coast"] in honest
        assert scenario.windows is not None and scenario.windows >= 2 * period


def test_the_spoil_control_scenario_aims_three_spoilers_at_a_wrong_data_partner() -> None:
    _, miners = expand(load_scenario(SCENARIO_DIR / "spoil-control.toml"))
    by_name = {m.name: m for m in miners}
    spoilers = [m for m in miners if m.behaviour == "spoil-control"]
    assert len(spoilers) == 3 and {m.behaviour for m in miners} - {"honest"} == {
        "spoil-control",
        "wrongdata",
    }
    assert all(by_name[m.args["target"]].behaviour == "wrongdata" for m in spoilers)
    assert {cls.name for cls in PARTNERED} == {"spoil-control"}


def test_unnamed_nodes_are_numbered_across_specs_in_order(tmp_path: Path) -> None:
    scenario = load_scenario(
        write(
            tmp_path,
            """
[[validators]]
[[validators]]
name = "lead"
stake = 5000.0

[[miners]]
count = 2
pages = 7

[[miners]]
behaviour = "copycat"
args = { target = "miner1" }

[[miners]]
name = "solo"
""",
        )
    )
    validators, miners = expand(scenario)
    assert [(v.name, v.stake) for v in validators] == [("validator0", 1000.0), ("lead", 5000.0)]
    assert [(m.name, m.behaviour, m.pages) for m in miners] == [
        ("miner0", "honest", 7),
        ("miner1", "honest", 7),
        ("miner2", "copycat", None),
        ("solo", "honest", None),
    ]
    assert miners[2].args == {"target": "miner1"}


def test_an_empty_file_is_one_validator_and_three_honest_miners(tmp_path: Path) -> None:
    validators, miners = expand(load_scenario(write(tmp_path, "")))
    assert [v.name for v in validators] == ["validator0"]
    assert [(m.name, m.behaviour) for m in miners] == [
        ("miner0", "honest"),
        ("miner1", "honest"),
        ("miner2", "honest"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        'colour = "blue"\n',
        '[[miners]]\nbehavior = "noise"\n',  # misspelt
        "[[validators]]\nstake = 1.0\nweight = 2.0\n",
    ],
)
def test_unknown_keys_are_rejected(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError, match="extra_forbidden|Extra inputs") as exc:
        load_scenario(path)
    assert str(path) in str(exc.value)


def test_a_named_spec_with_count_above_one_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="named miner spec must have count = 1"):
        load_scenario(write(tmp_path, '[[miners]]\nname = "twins"\ncount = 2\n'))


def test_a_target_that_is_not_a_node_is_rejected() -> None:
    scenario = Scenario(
        miners=[MinerSpec(count=2), MinerSpec(behaviour="copycat", args={"target": "miner9"})]
    )
    with pytest.raises(ScenarioError, match="miner miner2: target 'miner9' is not a node"):
        expand(scenario)


def test_an_explicit_name_that_clashes_with_a_generated_one_is_rejected() -> None:
    scenario = Scenario(validators=[ValidatorSpec(name="miner0")], miners=[MinerSpec(count=1)])
    with pytest.raises(ScenarioError, match="duplicate node names"):
        expand(scenario)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[[validators]]\nname = "a"\n[[miners]]\nname = "a"\n', "node names must be distinct"),
        ("validators = []\n", "at least one validator"),
        ("[[validators]]\nstake = 0.0\n", "greater than 0"),
        ('store = "ftp"\n', "pattern"),
        ("windows = 0\n", "greater than or equal to 1"),
        ("windows = \n", "Invalid value"),  # not TOML
    ],
)
def test_invalid_files_raise_scenario_error(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ScenarioError, match=problem):
        load_scenario(write(tmp_path, text))


def test_a_missing_file_raises_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="nope.toml"):
        load_scenario(tmp_path / "nope.toml")


def test_the_default_network_is_honest_with_equal_stakes() -> None:
    validators, miners = expand(honest_scenario(miners=4, validators=2))
    assert [(v.name, v.stake) for v in validators] == [
        ("validator0", 1000.0),
        ("validator1", 1000.0),
    ]
    assert [m.behaviour for m in miners] == ["honest"] * 4


def test_scenario_windows_block_time_store_and_seed_apply_over_defaults() -> None:
    scenario = Scenario(seed=7, windows=5, block_time=0.3, store="s3")
    config = apply_scenario(GauntletConfig(), scenario)
    assert (config.localnet.windows, config.localnet.block_time) == (5, 0.3)
    assert config.localnet.store == "s3"
    assert config.model.seed == 7


def test_localnet_settings_changed_from_their_default_win_over_the_scenario() -> None:
    given = GauntletConfig(localnet=LocalnetConfig(windows=12, block_time=0.2))
    config = apply_scenario(given, Scenario(windows=5, block_time=0.3, store="s3"))
    assert (config.localnet.windows, config.localnet.block_time) == (12, 0.2)
    assert config.localnet.store == "s3"  # still at its default, so the scenario's applies


def test_a_model_seed_given_on_the_command_line_wins_over_the_scenario_s() -> None:
    given = GauntletConfig.model_validate({"model": {"seed": 1}})
    assert apply_scenario(given, Scenario(seed=0)).model.seed == 1  # multi-seed runs differ
    assert apply_scenario(GauntletConfig(), Scenario(seed=3)).model.seed == 3


def test_a_scenario_without_windows_keeps_the_configured_ones() -> None:
    config = apply_scenario(GauntletConfig(localnet=LocalnetConfig(windows=12)), Scenario())
    assert config.localnet.windows == 12
    assert config.localnet.block_time == LocalnetConfig().block_time


def test_a_model_seed_from_the_command_line_is_kept_when_no_scenario_names_one() -> None:
    config = apply_scenario(GauntletConfig(model=ModelConfig(seed=5)), honest_scenario(3, 1))
    assert config.model.seed == 5


def test_config_overrides_merge_section_by_section() -> None:
    given = GauntletConfig(train=TrainConfig(batch_size=3, inner_steps=9))
    scenario = Scenario(
        config={
            "train": {"inner_steps": 4},
            "scoring": {"explained_threshold": 0.8, "penalties": {"late": 0.25}},
        }
    )
    config = apply_scenario(given, scenario)
    assert config.train.inner_steps == 4
    assert config.train.batch_size == 3  # the rest of the section is kept
    assert config.train.seq_len == TrainConfig().seq_len
    assert config.scoring.explained_threshold == 0.8
    assert config.scoring.penalties["late"] == 0.25
    assert config.scoring.penalties["desynced"] == 0.5  # nested tables merge too
    assert given.train.inner_steps == 9  # the input config is untouched


@pytest.mark.parametrize(
    "overrides",
    [
        {"train": {"no_such_knob": 1}},
        {"no_such_section": {"x": 1}},
        {"train": {"pages": 0}},
    ],
)
def test_bad_config_overrides_raise_scenario_error(overrides: dict) -> None:
    with pytest.raises(ScenarioError, match="scenario bad: bad config overrides"):
        apply_scenario(GauntletConfig(), Scenario(name="bad", config=overrides))
