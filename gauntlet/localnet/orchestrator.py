"""``gauntlet localnet``: start a chain, register and start nodes, watch windows, stop everything.

Everything runs as separate OS processes on loopback with the embedded defaults:
the simulated chain service, a filesystem object store under the run directory,
1+ validators and N miners. The run directory keeps wallets, stores, logs and
``summary.json``.
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
from gauntlet.localnet.processes import ProcessGroup
from gauntlet.localnet.report import RunSummary
from gauntlet.localnet.stores import StoreStartError, start_node_stores
from gauntlet.node.identity import coldkey_address, create_wallet
from gauntlet.node.report_table import window_table
from gauntlet.node.runtime import default_bucket
from gauntlet.storage.filesystem import FilesystemStore
from protocol.keys import reports_prefix, window_of_key, window_report_key
from protocol.schemas import WindowReport

VALIDATOR_STAKE = 1000.0
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


async def _register(
    endpoint: str, netuid: int, wallets: Path, names: list[str], stake: float
) -> None:
    from bittensor import Wallet

    from gauntlet.chain.sim.client import SimChainClient

    for name in names:
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


def run_localnet(config: GauntletConfig, config_file: str | None = None) -> int:
    ln = config.localnet
    run = Path(ln.run_dir).expanduser().resolve() / time.strftime("%Y%m%d-%H%M%S")
    run.mkdir(parents=True, exist_ok=False)
    group = ProcessGroup(run / "logs")
    summary = RunSummary()
    print(f"localnet: run directory {run}", flush=True)
    previous_sigterm = signal.signal(signal.SIGTERM, _interrupt)
    try:
        _run(config, run, group, summary)
        summary.completed = True
        return 0
    except KeyboardInterrupt:
        print("\nlocalnet: interrupted, stopping every process", flush=True)
        return 130
    except (LocalnetError, StoreStartError) as exc:
        print(f"localnet: failed: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        group.stop_all()
        signal.signal(signal.SIGTERM, previous_sigterm)
        (run / "summary.json").write_text(
            json.dumps({**asdict(summary), "pids": group.pids()}, indent=2)
        )


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM (e.g. from a supervisor) stops the run like Ctrl-C does."""
    raise KeyboardInterrupt


def _run(config: GauntletConfig, run: Path, group: ProcessGroup, summary: RunSummary) -> None:
    ln, netuid, bpw = config.localnet, config.chain.netuid, config.chain.blocks_per_window
    from gauntlet.data import ensure_dataset

    print("localnet: preparing the dataset (once; cached)", flush=True)
    ensure_dataset(
        Path(config.data.dataset_dir).expanduser(),
        page_tokens=config.data.page_tokens,
        max_tokens=config.data.max_tokens or None,
    )
    wallets = run / "wallets"
    validators = [f"validator{i}" for i in range(ln.validators)]
    miners = [f"miner{i}" for i in range(ln.miners)]
    for name in validators + miners:
        create_wallet(wallets, name)

    endpoint = _start_chain(config, run, group, port=0)
    asyncio.run(_register(endpoint, netuid, wallets, validators, VALIDATOR_STAKE))
    asyncio.run(_register(endpoint, netuid, wallets, miners, 0.0))

    node_config = _node_config(config, run)
    common = ["--config", str(node_config), "--chain.endpoint", endpoint]
    stores = start_node_stores(run, group, validators + miners) if ln.store == "s3" else {}
    for name in validators:
        env = {**os.environ, **stores.get(name, {}).get("env", {})}
        group.start(name, _gauntlet("validator", *common, "--wallet.name", name), env=env)
    for name in miners:
        env = {**os.environ, **stores.get(name, {}).get("env", {})}
        group.start(
            name, _miner_command(ln.miner_processes, *common, "--wallet.name", name), env=env
        )

    metagraph = asyncio.run(_chain_view(endpoint, netuid))
    from bittensor import Wallet

    hotkeys = {
        name: Wallet(name=name, path=str(wallets)).hotkey.ss58_address
        for name in validators + miners
    }
    role_of = {hotkey: name for name, hotkey in hotkeys.items()}
    summary.roles = {n.uid: role_of.get(n.hotkey, "?") for n in metagraph.neurons}
    lead = hotkeys[validators[0]]
    # Reports are read straight from the lead's bucket directory (rclone serves plain files).
    lead_store = stores.get(validators[0])
    reports = (
        FilesystemStore(lead_store["root"], lead_store["bucket"])
        if lead_store
        else FilesystemStore(run / "stores", default_bucket(lead))
    )
    lead_uid = metagraph.by_hotkey(lead).uid  # type: ignore[union-attr]

    window_seconds = bpw * ln.block_time
    deadline = time.monotonic() + STARTUP_TIMEOUT + window_seconds * (ln.windows + 3) * 2
    deadline += ln.chain_outage_seconds * 2 if ln.chain_outage_after else 0
    while len(summary.windows) < ln.windows:
        if time.monotonic() > deadline:
            raise LocalnetError(
                f"only {len(summary.windows)} of {ln.windows} windows completed in time"
            )
        if dead := group.dead():
            raise LocalnetError(
                f"{dead[0].name} exited (code {dead[0].process.returncode}); see {dead[0].log_path}"
            )
        report = _next_report(reports, lead, summary)
        if report is None:
            time.sleep(min(1.0, ln.block_time))
            continue
        summary.add(report)
        print(window_table(report, summary.roles), flush=True)
        if ln.chain_outage_after and len(summary.windows) == ln.chain_outage_after:
            _chain_outage(config, run, group, endpoint)

    metagraph = asyncio.run(_chain_view(endpoint, netuid))
    summary.chain_weights = dict(metagraph.weights.get(lead_uid, {}))
    summary.incentive = {n.uid: n.incentive for n in metagraph.neurons}
    print(summary.render(), flush=True)


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
            "--tempo", str(bpw), "--weights-rate-limit", str(max(1, bpw // 2)),
        ),
    )  # fmt: skip
    return _wait_for_file(ready, group, STARTUP_TIMEOUT)


def _chain_outage(config: GauntletConfig, run: Path, group: ProcessGroup, endpoint: str) -> None:
    """Stop the chain, wait, restart it on the same port and database (nodes must ride it out)."""
    chain = next(c for c in group.children if c.name == "chain")
    seconds = config.localnet.chain_outage_seconds
    print(f"localnet: fault injection: chain down for {seconds:.0f}s", flush=True)
    group.stop(chain)
    time.sleep(seconds)
    restarted = _start_chain(config, run, group, port=int(endpoint.rsplit(":", 1)[1]))
    if restarted != endpoint:
        raise LocalnetError(f"chain came back at {restarted}, not {endpoint}")
    print("localnet: fault injection: chain is back", flush=True)


def _next_report(store: FilesystemStore, hotkey: str, summary: RunSummary) -> WindowReport | None:
    """The lead validator's next window report, if it is there yet.

    Before the first report the earliest one present is next; after it, the
    report of the window following the last one shown.
    """
    if summary.windows:
        windows = [summary.windows[-1] + 1]
    else:
        found = (
            window_of_key(p.relative_to(store.base).as_posix())
            for p in (store.base / reports_prefix()).rglob("*.json")
        )
        windows = sorted(w for w in found if w is not None)[:1]
    for window in windows:
        path = store.base / window_report_key(window, hotkey)
        if path.is_file():
            return WindowReport.model_validate_json(path.read_text())
    return None
