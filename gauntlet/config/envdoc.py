"""Render ``.env.example`` and docs/configuration.md from the schema, so both list every setting.

``python -m gauntlet.config.envdoc > .env.example`` and
``python -m gauntlet.config.envdoc --markdown > docs/configuration.md``; a test checks both are current.

Both also list the deployment's own variables (:data:`DEPLOYMENT`): what docker/compose.yml and
docker/compose.localnet.yml read from the same ``.env`` besides node settings (images, ports,
object store keys, wallet mounts). None starts with ``GAUNTLET_``, which is reserved for
settings; tests/docker checks that every variable a compose file uses is listed here with the
compose file's own default.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pydantic import BaseModel

from gauntlet.config.loader import CONFIG_FILE_ENV, ENV_PREFIX
from gauntlet.config.schema import GauntletConfig


def _env_value(default: object) -> str:
    """How the default is written in an environment variable (JSON for collections)."""
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, dict | list):
        return json.dumps(default, separators=(",", ":"))
    return str(default)


@dataclass(frozen=True)
class DeployVar:
    name: str
    default: str  # compose's own default ("" where the variable must be set for its feature)
    meaning: str


SEAWEEDFS = "http://seaweedfs:8333"
# Group -> variables, in the order .env.example lists them.
DEPLOYMENT: dict[str, list[DeployVar]] = {
    "chain": [
        DeployVar(
            "SUBTENSOR_IMAGE",
            "ghcr.io/opentensor/subtensor-localnet:devnet-ready",
            "compose.localnet.yml, profile subtensor: a local subtensor chain (fast blocks)",
        ),
        DeployVar("SUBTENSOR_PORT", "9944", "Host port (127.0.0.1) of that subtensor's websocket"),
        DeployVar("SUBTENSOR_NETUID", "2", "Netuid you created on that subtensor with btcli"),
        DeployVar(
            "SUBTENSOR_BLOCKS_PER_WINDOW",
            "40",
            "chain.blocks_per_window for its nodes (fast blocks are 0.25 s)",
        ),
    ],
    "wallet": [
        DeployVar(
            "WALLETS_DIR",
            "~/.bittensor/wallets",
            "Host directory of Bittensor wallets, mounted read-only at /wallets",
        ),
        DeployVar("MINER_WALLET_NAME", "default", "Miner's wallet (coldkey) name"),
        DeployVar("MINER_HOTKEY", "default", "Miner's hotkey name (registered on the netuid)"),
        DeployVar("VALIDATOR_WALLET_NAME", "default", "Validator's wallet (coldkey) name"),
        DeployVar(
            "VALIDATOR_HOTKEY", "default", "Validator's hotkey name (with a validator permit)"
        ),
        DeployVar(
            "NODE_UID",
            "10001",
            "Uid the nodes run as: the owner of WALLETS_DIR's key files (`id -u`), so they can read them",
        ),
    ],
    "storage": [
        DeployVar(
            "STORE_ENDPOINT",
            SEAWEEDFS,
            "S3 endpoint the nodes write to and publish on chain: public HTTPS on a real network "
            "(R2: https://<account>.r2.cloudflarestorage.com)",
        ),
        DeployVar("STORE_REGION", "us-east-1", "S3 region ('auto' for R2)"),
        DeployVar(
            "STORE_ADMIN_ACCESS_KEY_ID",
            "",
            "Profile store: SeaweedFS admin key, creates the buckets (docker/new-keys.sh makes all keys)",
        ),
        DeployVar("STORE_ADMIN_SECRET_ACCESS_KEY", "", "Profile store: secret of the admin key"),
        DeployVar("MINER_BUCKET", "gauntlet-miner", "Miner's bucket"),
        DeployVar("MINER_WRITE_ACCESS_KEY_ID", "", "Miner's write key (kept secret)"),
        DeployVar("MINER_WRITE_SECRET_ACCESS_KEY", "", "Secret of the miner's write key"),
        DeployVar(
            "MINER_READ_ACCESS_KEY_ID",
            "",
            "Miner's read-only key (published on chain: read + list only)",
        ),
        DeployVar("MINER_READ_SECRET_ACCESS_KEY", "", "Secret of the miner's read-only key"),
        DeployVar("VALIDATOR_BUCKET", "gauntlet-validator", "Validator's bucket"),
        DeployVar("VALIDATOR_WRITE_ACCESS_KEY_ID", "", "Validator's write key (kept secret)"),
        DeployVar("VALIDATOR_WRITE_SECRET_ACCESS_KEY", "", "Secret of the validator's write key"),
        DeployVar(
            "VALIDATOR_READ_ACCESS_KEY_ID",
            "",
            "Validator's read-only key (published on chain: read + list only)",
        ),
        DeployVar(
            "VALIDATOR_READ_SECRET_ACCESS_KEY", "", "Secret of the validator's read-only key"
        ),
        DeployVar("SEAWEEDFS_IMAGE", "chrislusf/seaweedfs:4.09", "Profile store: SeaweedFS image"),
        DeployVar(
            "STORE_DATA_DIR", "store-data", "Profile store: volume name or host path of its data"
        ),
        DeployVar("STORE_PORT", "8333", "Profile store: host port (127.0.0.1) of its S3 API"),
    ],
    "model": [
        DeployVar(
            "DATA_DIR", "data", "Volume name or host path mounted at /data (datasets, /data/stdlib)"
        ),
        DeployVar("MINER_DEVICE", "cuda", "Miner's train.device"),
        DeployVar("VALIDATOR_DEVICE", "cuda", "Validator's train.device"),
        DeployVar("MINER_NPROC_PER_NODE", "1", "Miner processes under torchrun, one per GPU"),
        DeployVar("MINER_GPU_COUNT", "all", "GPUs reserved for the miner ('all' or a number)"),
        DeployVar(
            "VALIDATOR_GPU_COUNT", "all", "GPUs reserved for the validator ('all' or a number)"
        ),
        DeployVar(
            "NODE_SHM_SIZE", "8gb", "Shared memory per node container (torchrun, DataLoader)"
        ),
    ],
    "telemetry": [
        DeployVar("MINER_METRICS_PORT", "9100", "Host port (127.0.0.1) of the miner's /metrics"),
        DeployVar(
            "VALIDATOR_METRICS_PORT",
            "9101",
            "Host port (127.0.0.1) of the validator's /metrics and status page",
        ),
        DeployVar(
            "PROMETHEUS_IMAGE", "prom/prometheus:v3.5.0", "Profile monitoring: Prometheus image"
        ),
        DeployVar(
            "PROMETHEUS_PORT", "9090", "Profile monitoring: Prometheus host port (127.0.0.1)"
        ),
        DeployVar(
            "PROMETHEUS_RETENTION", "30d", "Profile monitoring: how long Prometheus keeps data"
        ),
        DeployVar("GRAFANA_IMAGE", "grafana/grafana:12.2.0", "Profile monitoring: Grafana image"),
        DeployVar("GRAFANA_PORT", "3000", "Profile monitoring: Grafana host port (127.0.0.1)"),
        DeployVar("GRAFANA_ADMIN_USER", "admin", "Profile monitoring: Grafana admin user"),
        DeployVar(
            "GRAFANA_ADMIN_PASSWORD", "", "Profile monitoring: Grafana admin password (required)"
        ),
    ],
    "deployment": [
        DeployVar(
            "COMPOSE_PROJECT_NAME",
            "gauntlet",
            "Compose project: the prefix of container and volume names (gauntlet_miner-state); "
            "unset, compose takes the compose file's folder name, 'docker'",
        ),
        DeployVar(
            "COMPOSE_PROFILES",
            "",
            "What docker/compose.yml runs: store, miner, validator, monitoring (comma separated)",
        ),
        DeployVar("NODE_IMAGE", "gauntlet:cuda", "Tag of the node image compose builds and runs"),
        DeployVar("NODE_VARIANT", "cuda", "Image variant: cuda (GPU) or cpu"),
        DeployVar("TORCH_VERSION", "2.13.0", "torch in the image (keep equal to constraints.txt)"),
        DeployVar(
            "TORCH_CUDA", "cu130", "PyTorch wheel index of the CUDA variant (cu126, cu128, cu130)"
        ),
        DeployVar("NODE_CPU_IMAGE", "gauntlet:cpu", "Tag of the CPU image (compose.localnet.yml)"),
        DeployVar(
            "WAIT_TIMEOUT", "300", "Seconds a node waits for its chain endpoint and bucket at start"
        ),
        DeployVar("LOCALNET_WINDOWS", "8", "compose.localnet.yml: windows to run"),
        DeployVar("LOCALNET_MINERS", "3", "compose.localnet.yml: honest miners"),
        DeployVar("LOCALNET_VALIDATORS", "1", "compose.localnet.yml: validators"),
        DeployVar("LOCALNET_ARGS", "", "compose.localnet.yml: more `gauntlet localnet` flags"),
    ],
}


def render_env_example() -> str:
    lines = [
        "# Gauntlet settings as environment variables: GAUNTLET_<SECTION>__<FIELD>.",
        "# Every setting is listed with its default, commented out; uncomment to override.",
        "# Priority: command-line flags > these variables > config file > defaults.",
        "",
        "# Path of a TOML or JSON config file.",
        f"# {CONFIG_FILE_ENV}=",
    ]
    for section, info in GauntletConfig.model_fields.items():
        model: type[BaseModel] = info.annotation  # type: ignore[assignment]
        lines += ["", f"# --- {section} ---"]
        for name, field in model.model_fields.items():
            value = _env_value(field.get_default(call_default_factory=True))
            # Every line commented: a multi-line description must not leave bare text in the
            # file, which docker compose and dotenv parsers read as a broken assignment.
            lines += [f"# {line}".rstrip() for line in str(field.description).splitlines()]
            lines.append(f"# {ENV_PREFIX}{section.upper()}__{name.upper()}={value}")
    lines += [
        "",
        "# ===== Deployment: docker/compose.yml and docker/compose.localnet.yml (docs/deployment.md) =====",
        "# Compose's own variables, listed with compose's default, commented out. Under compose the",
        "# storage.*, wallet.name/hotkey and train.device settings come from these per-role variables.",
        "# Keys: `bash docker/new-keys.sh >> .env` appends random ones.",
    ]
    for group, variables in DEPLOYMENT.items():
        lines += ["", f"# --- deployment: {group} ---"]
        for var in variables:
            lines += [f"# {var.meaning}", f"# {var.name}={var.default}"]
    return "\n".join(lines) + "\n"


def _one_line(text: str | None) -> str:
    """A description as one table cell: a newline would end the Markdown table row, and a
    bare ``|`` (``|cosine|``) would split the cell, so it is escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def render_markdown() -> str:
    """docs/configuration.md: every setting with its flag, variable, default and meaning."""
    lines = [
        "# Configuration",
        "",
        "One schema (`gauntlet/config/schema.py`) holds every setting. Sources, lowest to",
        "highest priority: defaults, a TOML or JSON file (`--config FILE` or `GAUNTLET_CONFIG`),",
        "environment variables, command-line flags. Unknown keys are errors in every source.",
        "`gauntlet config show` prints the effective configuration.",
        "",
        "Aliases for Bittensor habits: `--netuid` = `--chain.netuid`, `--subtensor.network` =",
        "`--chain.network`, `--subtensor.chain_endpoint` = `--chain.endpoint`.",
        "",
        "This page is generated: `python -m gauntlet.config.envdoc --markdown > docs/configuration.md`.",
    ]
    for section, info in GauntletConfig.model_fields.items():
        model: type[BaseModel] = info.annotation  # type: ignore[assignment]
        lines += [
            "",
            f"## `{section}`",
            "",
            "| flag | environment variable | default | meaning |",
            "| --- | --- | --- | --- |",
        ]
        for name, field in model.model_fields.items():
            env = f"{ENV_PREFIX}{section.upper()}__{name.upper()}"
            default = field.get_default(call_default_factory=True)
            lines.append(
                f"| `--{section}.{name}` | `{env}` | `{default!r}` | {_one_line(field.description)} |"
            )
    lines += [
        "",
        "## Deployment variables",
        "",
        "What docker/compose.yml and docker/compose.localnet.yml read from the same `.env`",
        "([deployment guide](deployment.md)). Under compose the nodes' `storage.*`,",
        "`wallet.name`/`wallet.hotkey` and `train.device` come from these per-role variables.",
    ]
    for group, variables in DEPLOYMENT.items():
        lines += ["", f"### {group}", "", "| variable | default | meaning |", "| --- | --- | --- |"]
        lines += [f"| `{v.name}` | `{v.default}` | {v.meaning} |" for v in variables]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    print(render_markdown() if "--markdown" in sys.argv else render_env_example(), end="")
