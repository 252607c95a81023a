"""``gauntlet localnet``: start a chain, register and start nodes, watch windows, stop everything.

Everything runs as separate OS processes on loopback: the simulated chain service,
the object store (a directory per node, or one S3 server per node), the scenario's
validators (with their stakes) and miners (honest ones run ``gauntlet miner``,
the others ``gauntlet sim-miner --behaviour``). The run directory keeps wallets,
stores, logs and ``summary.json``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path

from gauntlet.config.schema import GauntletConfig
from gauntlet.localnet.faults import (
    CRASH_POINT_WINDOWS,
    AimedCrashes,
    FaultError,
    chain_outage,
    crash_and_restart,
)
from gauntlet.localnet.forked import preload
from gauntlet.localnet.html_report import write_report
from gauntlet.localnet.leaderboard import Leaderboard
from gauntlet.localnet.processes import ProcessGroup
from gauntlet.localnet.recording import write_recording
from gauntlet.localnet.release import NodesNotUp, release_file, release_when_up
from gauntlet.localnet.report import RunSummary, next_report
from gauntlet.localnet.results import RunMeta, RunResults
from gauntlet.localnet.scenario import (
    MinerNode,
    Scenario,
    ScenarioError,
    ValidatorNode,
    expand,
    honest_scenario,
    load_scenario,
)
from gauntlet.localnet.stores import StoreStartError, start_node_stores
from gauntlet.node.identity import coldkey_address, create_wallet
from gauntlet.node.runtime import default_bucket
from gauntlet.storage.filesystem import FilesystemStore
from gauntlet.telemetry import base_url, free_ports

STARTUP_TIMEOUT = 60.0


class LocalnetError(RuntimeError):
    pass


def _gauntlet(*args: str) -> list[str]:
    return [sys.executable, "-m", "gauntlet.cli", *args]


def _miner_command(processes: int, *args: str) -> list[str]:
    """One miner; with several processes it runs under torchrun like on a multi-GPU host."""
    if processes == 1:
        return _gauntlet("miner", *args)
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        str(processes),
    ]
    return [*torchrun, "-m", "gauntlet.cli", "miner", *args]


def _wait_for_file(path: Path, group: ProcessGroup, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text().strip():
            return path.read_text().strip()
        if group.dead():
            raise LocalnetError(
                f"{group.dead()[0].name} exited early; see {group.dead()[0].log_path}"
            )
        time.sleep(0.1)
    raise LocalnetError(f"timed out waiting for {path}")


async def _register(endpoint: str, netuid: int, wallets: Path, stakes: dict[str, float]) -> None:
    """Register each named wallet's hotkey, in order, with its stake."""
    from bittensor import Wallet

    from gauntlet.chain.sim.client import SimChainClient

    for name, stake in stakes.items():
        keypair = Wallet(name=name, path=str(wallets)).hotkey
        client = SimChainClient(endpoint, netuid, keypair)
        try:
            await client.register(stake=stake, coldkey=coldkey_address(wallets, name))
        finally:
            await client.close()


async def _chain_view(endpoint: str, netuid: int):
    from gauntlet.chain.sim.client import SimChainClient

    client = SimChainClient(endpoint, netuid)
    try:
        return await client.metagraph()
    finally:
        await client.close()


def _merge(base: dict, overrides: dict) -> dict:
    """``base`` with ``overrides`` merged in, section by section."""
    out = dict(base)
    for key, value in overrides.items():
        out[key] = (
            _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict)
            else value
        )  # fmt: skip
    return out


def apply_scenario(config: GauntletConfig, scenario: Scenario) -> GauntletConfig:
    """The run's config: the scenario's node overrides, and the seed, windows, block time and
    store it names unless the command line gives them non-default values."""
    # A localnet setting left at its default yields to the scenario's value.
    fields = type(config.localnet).model_fields
    explicit = {k for k in fields if getattr(config.localnet, k) != fields[k].default}
    data = _merge(config.model_dump(), scenario.config)
    # Likewise the model seed: `--model.seed S` (not the default) runs the scenario with S.
    seed_default = type(config.model).model_fields["seed"].default
    if scenario.seed is not None and config.model.seed == seed_default:
        data["model"]["seed"] = scenario.seed
    for key in ("windows", "block_time", "store"):
        value = getattr(scenario, key)
        if value is not None and key not in explicit:
            data["localnet"][key] = value
    try:
        return GauntletConfig.model_validate(data)
    except ValueError as exc:
        raise ScenarioError(f"scenario {scenario.name}: bad config overrides: {exc}") from exc


def _node_config(config: GauntletConfig, run: Path) -> Path:
    data = config.model_dump()
    data["storage"]["root"] = str(run / "stores")
    data["storage"]["bucket"] = ""  # each node derives its own
    data["node"]["state_dir"] = str(run / "state")
    data["wallet"]["path"] = str(run / "wallets")
    data["compress"]["topk"] = config.localnet.topk
    if not data["train"]["torch_threads"]:
        data["train"]["torch_threads"] = 1  # many processes share few cores
    path = run / "node-config.json"
    path.write_text(json.dumps(data, indent=2))
    return path


def _scenario(config: GauntletConfig) -> Scenario:
    ln = config.localnet
    if ln.scenario:
        return load_scenario(ln.scenario)
    return honest_scenario(ln.miners, ln.validators)


def run_localnet(config: GauntletConfig, config_file: str | None = None) -> int:
    from gauntlet.localnet.behaviours import BEHAVIOURS

    try:
        scenario = _scenario(config)
        config = apply_scenario(config, scenario)
        validators, miners = expand(scenario)
        unknown = sorted({m.behaviour for m in miners} - set(BEHAVIOURS))
        if unknown:
            raise ScenarioError(f"scenario {scenario.name}: unknown behaviours {unknown}")
    except ScenarioError as exc:
        print(f"localnet: {exc}", file=sys.stderr, flush=True)
        return 2
    ln = config.localnet
    run = Path(ln.run_dir).expanduser().resolve() / time.strftime("%Y%m%d-%H%M%S")
    run.mkdir(parents=True, exist_ok=False)
    group = ProcessGroup(run / "logs", fork=ln.fork_nodes)
    if ln.fork_nodes:
        preload()  # once here, instead of in every node (see gauntlet/localnet/forked.py)
    summary = RunSummary(scenario=scenario.name)
    results = RunResults(
        meta=RunMeta(
            scenario=scenario.name,
            seed=config.model.seed,
            model=config.model.name,
            windows=ln.windows,
            block_time=ln.block_time,
            blocks_per_window=config.chain.blocks_per_window,
        )
    )
    print(f"localnet: scenario {scenario.name}; run directory {run}", flush=True)
    previous_sigterm = signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    try:
        _run(config, run, group, summary, results, validators, miners)
        summary.completed = True
        return 0
    except KeyboardInterrupt:
        print("\nlocalnet: interrupted, stopping every process", flush=True)
        return 130
    except (LocalnetError, StoreStartError, FaultError, NodesNotUp) as exc:
        print(f"localnet: failed: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        summary.wall_seconds = round(time.monotonic() - started, 1)
        group.stop_all()
        signal.signal(signal.SIGTERM, previous_sigterm)
        urls = run / "urls.json"  # metrics and status page URLs, written at start
        extra = json.loads(urls.read_text()) if urls.is_file() else {}
        (run / "summary.json").write_text(
            json.dumps({**asdict(summary), **extra, "pids": group.pids()}, indent=2)
        )
        if results.windows:
            results.finish(peak_rss_mib=summary.peak_rss_bytes / 2**20)
            page = write_report(results, run / "report")
            print(f"localnet: {results.summary_line()}\nlocalnet: report {page}", flush=True)
            write_recording(run)  # the measurements, to re-score offline (docs/localnet.md)


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM (e.g. from a supervisor) stops the run like Ctrl-C does."""
    raise KeyboardInterrupt


def _miner_argv(
    config: GauntletConfig, node: MinerNode, common: list[str], hotkeys: dict[str, str]
) -> list[str]:
    """Honest miners run the production command; the others the same loop with a behaviour."""
    args = [*common, "--wallet.name", node.name]
    if node.pages:
        args += ["--train.pages", str(node.pages)]
    if node.behaviour == "honest":
        return _miner_command(config.localnet.miner_processes, *args)
    behaviour_args = dict(node.args)
    if "target" in behaviour_args:  # scenario files name nodes; behaviours need hotkeys
        behaviour_args["target"] = hotkeys[behaviour_args["target"]]
    return _gauntlet(
        "sim-miner", *args, "--behaviour", node.behaviour,
        "--behaviour-args", json.dumps(behaviour_args),
    )  # fmt: skip


def _lead(validators: list[ValidatorNode]) -> ValidatorNode:
    """The lead validator's rule (highest stake; ties: registered first, so lowest uid)."""
    return max(validators, key=lambda v: v.stake)


def _run(
    config: GauntletConfig,
    run: Path,
    group: ProcessGroup,
    summary: RunSummary,
    results: RunResults,
    validators: list[ValidatorNode],
    miners: list[MinerNode],
) -> None:
    ln, netuid, bpw = config.localnet, config.chain.netuid, config.chain.blocks_per_window
    from bittensor import Wallet

    from gauntlet.data import ensure_dataset

    print("localnet: preparing the dataset (once; cached)", flush=True)
    ensure_dataset(
        Path(config.data.dataset_dir).expanduser(),
        page_tokens=config.data.page_tokens,
        max_tokens=config.data.max_tokens or None,
    )
    wallets = run / "wallets"
    names = [v.name for v in validators] + [m.name for m in miners]
    for name in names:
        create_wallet(wallets, name)
    hotkeys = {name: Wallet(name=name, path=str(wallets)).hotkey.ss58_address for name in names}

    release_file(run).unlink(missing_ok=True)
    endpoint = _start_chain(config, run, group, port=0)
    stakes = {v.name: v.stake for v in validators} | {m.name: 0.0 for m in miners}
    asyncio.run(_register(endpoint, netuid, wallets, stakes))

    node_config = _node_config(config, run)
    common = ["--config", str(node_config), "--chain.endpoint", endpoint]
    stores = start_node_stores(run, group, names) if ln.store == "s3" else {}

    # Nodes read node-config.json; a GAUNTLET_* variable in our environment would beat it
    # (e.g. send every node to the operator's wallets or bucket), so none is passed on.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("GAUNTLET_")}

    last = validators[-1].name
    crashes = AimedCrashes.parse(
        last, ln.crash_points, journal=run / "state" / f"validator-{hotkeys[last]}.jsonl"
    )

    def env(name: str) -> dict[str, str]:
        armed = crashes.env() if name == crashes.victim else {}
        return {**inherited, **stores.get(name, {}).get("env", {}), **armed}

    ports = _metrics_ports(config, run, names, _lead(validators).name)

    def own(name: str) -> list[str]:
        return [*common, "--telemetry.metrics_port", str(ports[name])]

    for v in validators:
        group.start(
            v.name, _gauntlet("validator", *own(v.name), "--wallet.name", v.name), env=env(v.name)
        )
    for m in miners:
        group.start(m.name, _miner_argv(config, m, own(m.name), hotkeys), env=env(m.name))
    host = config.telemetry.metrics_host
    release_when_up(
        group, run, {n: base_url(host, p) + "/metrics" for n, p in ports.items()}, crashes
    )

    metagraph = asyncio.run(_chain_view(endpoint, netuid))
    role_of = {hotkey: name for name, hotkey in hotkeys.items()}
    behaviour_of = {m.name: m.behaviour for m in miners} | {v.name: "validator" for v in validators}
    summary.roles = {n.uid: role_of.get(n.hotkey, "?") for n in metagraph.neurons}
    summary.behaviours = {uid: behaviour_of.get(name, "?") for uid, name in summary.roles.items()}
    uid_of = {role_of[n.hotkey]: n.uid for n in metagraph.neurons if n.hotkey in role_of}
    for v in validators:
        results.add_node(v.name, uid_of[v.name], "validator", "validator", stake=v.stake)
    for m in miners:
        budget = m.pages or config.train.pages
        results.add_node(m.name, uid_of[m.name], "miner", m.behaviour, pages=budget)
        summary.budgets[uid_of[m.name]] = budget
    lead = _lead(validators)
    # Reports are read straight from the lead's bucket directory (rclone serves plain files).
    lead_store = stores.get(lead.name)
    reports = (
        FilesystemStore(lead_store["root"], lead_store["bucket"])
        if lead_store
        else FilesystemStore(run / "stores", default_bucket(hotkeys[lead.name]))
    )
    lead_uid = metagraph.by_hotkey(hotkeys[lead.name]).uid  # type: ignore[union-attr]

    window_seconds = bpw * ln.block_time
    deadline = time.monotonic() + STARTUP_TIMEOUT + window_seconds * (ln.windows + 3) * 2
    deadline += ln.chain_outage_seconds * 2 if ln.chain_outage_after else 0
    deadline += window_seconds * 4 if ln.kill_validator_after else 0
    if crashes.points:  # each point, and the recovery after the last
        deadline += window_seconds * CRASH_POINT_WINDOWS * (len(crashes.points) + 1)
    with Leaderboard(results) as board:
        # Aimed crashes extend the run until the last point has fired and been survived: a
        # restart costs windows on a slow machine, and a crash cut off by the end tests nothing.
        while len(summary.windows) < ln.windows or not crashes.done():
            if time.monotonic() > deadline:
                lead_log = next(c.log_path for c in group.children if c.name == lead.name)
                raise LocalnetError(
                    f"only {len(summary.windows)} of {ln.windows} windows completed in time; "
                    f"{lead_log} ends:\n{log_tail(lead_log)}"
                )
            dead = group.dead()
            if dead and dead[0].name == crashes.victim and crashes.points:
                crashes.restart(group, dead[0], len(summary.windows))
                continue
            if dead:
                raise LocalnetError(
                    f"{dead[0].name} exited (code {dead[0].process.returncode}); "
                    f"see {dead[0].log_path}"
                )
            if overdue := crashes.overdue(len(summary.windows)):
                raise LocalnetError(
                    f"{overdue} not reached in {len(summary.windows) - crashes.armed_at} "
                    f"windows: {crashes.victim} never got there"
                )
            summary.peak_rss_bytes = max(summary.peak_rss_bytes, group.rss_bytes())
            report = next_report(reports, hotkeys[lead.name], summary)
            if report is None:
                time.sleep(min(1.0, ln.block_time))
                continue
            summary.add(report)
            results.add_report(report)
            if (incentive := _incentive(endpoint, netuid)) is not None:
                results.set_incentive(report.window, incentive)
            board.update()
            if ln.chain_outage_after and len(summary.windows) == ln.chain_outage_after:
                chain_outage(
                    group,
                    ln.chain_outage_seconds,
                    lambda: _start_chain(config, run, group, port=int(endpoint.rsplit(":", 1)[1])),
                    endpoint,
                )
            if ln.kill_validator_after and len(summary.windows) == ln.kill_validator_after:
                victim = next(c for c in group.children if c.name == validators[-1].name)
                crash_and_restart(
                    group, victim, delay=0.4 * window_seconds, downtime=window_seconds
                )

    metagraph = asyncio.run(_chain_view(endpoint, netuid))
    summary.chain_weights = dict(metagraph.weights.get(lead_uid, {}))
    summary.incentive = {n.uid: n.incentive for n in metagraph.neurons}
    summary.incentive_mean = results.mean_incentive()
    summary.incentive_late = results.mean_incentive(late=True)
    summary.pages_processed = results.pages_processed()
    print(summary.render(), flush=True)


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` of a node's log, for an error that must be diagnosable from a CI
    transcript alone (the run directory is gone by the time anyone reads it)."""
    try:
        with open(path, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 64 * 1024))
            text = log.read().decode(errors="replace")
    except OSError as exc:
        return f"(unreadable: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def _metrics_ports(
    config: GauntletConfig, run: Path, names: list[str], lead: str
) -> dict[str, int]:
    """A free metrics port per node; their URLs go to ``urls.json`` (and summary.json)."""
    host = config.telemetry.metrics_host
    ports = dict(zip(names, free_ports(len(names), host), strict=True))
    status = base_url(host, ports[lead]) + "/"
    metrics = {name: base_url(host, port) + "/metrics" for name, port in ports.items()}
    (run / "urls.json").write_text(json.dumps({"metrics": metrics, "status_page": status}))
    print(
        f"localnet: status page {status} ({lead}); metrics URLs in {run / 'urls.json'}", flush=True
    )
    return ports


def _incentive(endpoint: str, netuid: int) -> dict[int, float] | None:
    """Incentive per uid from the chain, or None while it is unreachable."""
    from gauntlet.chain.base import ChainError

    try:
        metagraph = asyncio.run(_chain_view(endpoint, netuid))
    except (ChainError, OSError):
        return None
    return {n.uid: n.incentive for n in metagraph.neurons}


def _start_chain(config: GauntletConfig, run: Path, group: ProcessGroup, *, port: int) -> str:
    """Start the chain service on ``port`` (0: any free one) over the run's database; its URL."""
    ln, bpw = config.localnet, config.chain.blocks_per_window
    ready = run / "chain.url"
    ready.unlink(missing_ok=True)
    group.start(
        "chain",
        _gauntlet(
            "chain", "serve", "--port", str(port), "--db", str(run / "chain.sqlite"),
            "--block-time", str(ln.block_time), "--ready-file", str(ready),
            "--hold-until", str(release_file(run)),
            "--tempo", str(bpw), "--weights-rate-limit", str(max(1, bpw // 2)),
        ),
    )  # fmt: skip
    return _wait_for_file(ready, group, STARTUP_TIMEOUT)
