#!/usr/bin/env bash
# Container entry point: turns the container's environment into a `gauntlet` command line.
#
#   gauntlet-entrypoint [ROLE] [FLAGS...]    ROLE: miner | validator | localnet | chain
#   gauntlet-entrypoint healthcheck          what the image's HEALTHCHECK runs
#   gauntlet-entrypoint COMMAND [ARGS...]    any other gauntlet command (config show, data prepare,
#                                            chain status, ...) or program (python, bash) as given
#
# Node settings stay GAUNTLET_<SECTION>__<FIELD> variables, read by gauntlet itself (so secrets
# never reach a command line). The variables below are the container's own; none starts with
# GAUNTLET_, because gauntlet rejects GAUNTLET_* variables that name no setting.
#
#   NODE_ROLE       role when no ROLE argument is given
#   NODE_ARGS       extra flags appended to the role's command line (split on spaces)
#   NPROC_PER_NODE  miner: processes under torchrun, one per GPU (default 1: no torchrun)
#   WAIT_FOR        host:port or URLs to wait for before starting, space separated; "auto"
#                   (default): a sim/local chain endpoint, and with storage.backend=s3 until the
#                   node's bucket lists with its write key; "none": start at once
#   WAIT_TIMEOUT    seconds to wait for them (default 300)
#   WALLETS_MOUNT   where the wallets are mounted (default /wallets)
#   SIM_CHAIN_PORT, SIM_CHAIN_BLOCK_TIME, SIM_CHAIN_DB   role chain (the simulated chain service)
#   ROLE_FILE       where the role is noted for the healthcheck (default /tmp/gauntlet-entrypoint.role)
#
# Container paths: if /state, /data, /store, /runs exist (the image creates them) they are the
# defaults of node.state_dir, data.dataset_dir (/data/stdlib), storage.root and localnet.run_dir.
set -euo pipefail

ROLE_FILE=${ROLE_FILE:-/tmp/gauntlet-entrypoint.role}

log() { printf 'gauntlet-entrypoint: %s\n' "$*" >&2; }
die() {
    log "$*"
    exit 78 # EX_CONFIG: the container's configuration is wrong; restarting will not help
}

usage() {
    sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
}

default_env() { # NAME VALUE: export NAME=VALUE unless NAME is already set (even to "")
    if [[ -z ${!1+set} ]]; then export "$1=$2"; fi
}

container_paths() {
    [[ -d /state ]] && default_env GAUNTLET_NODE__STATE_DIR /state
    [[ -d /data ]] && default_env GAUNTLET_DATA__DATASET_DIR /data/stdlib
    [[ -d /store ]] && default_env GAUNTLET_STORAGE__ROOT /store
    [[ -d /runs ]] && default_env GAUNTLET_LOCALNET__RUN_DIR /runs
    local wallets=${WALLETS_MOUNT:-/wallets}
    [[ -d $wallets ]] && default_env GAUNTLET_WALLET__PATH "$wallets"
    return 0
}

# Compose passes the whole .env to every service; a node needs none of the deployment's other
# secrets (object store admin key, Grafana password), so they leave before gauntlet starts.
drop_foreign_secrets() {
    local name
    while IFS= read -r name; do
        case $name in
        GAUNTLET_*) ;;
        *SECRET* | *PASSWORD*) unset "$name" ;;
        esac
    done < <(compgen -e)
}

# --- waiting for services -------------------------------------------------------------------

host_port() { # URL or host:port -> "host port" (default ports by scheme)
    local target=$1 scheme="" rest port
    if [[ $target == *://* ]]; then
        scheme=${target%%://*}
        rest=${target#*://}
    else
        rest=$target
    fi
    rest=${rest%%/*}
    rest=${rest##*@}
    if [[ $rest == *:* ]]; then
        port=${rest##*:}
        rest=${rest%:*}
    else
        case $scheme in
        https | wss) port=443 ;;
        *) port=80 ;;
        esac
    fi
    printf '%s %s\n' "$rest" "$port"
}

wait_targets() { # the role's chain endpoint worth waiting for, from the settings
    local role=$1
    if [[ ${WAIT_FOR:-auto} != auto ]]; then
        local -a listed
        read -r -a listed <<<"$WAIT_FOR"
        [[ $WAIT_FOR == none ]] || printf '%s\n' "${listed[@]}"
        return 0
    fi
    [[ $role == miner || $role == validator ]] || return 0
    case ${GAUNTLET_CHAIN__NETWORK:-sim} in
    sim | local) printf '%s\n' "${GAUNTLET_CHAIN__ENDPOINT:-http://127.0.0.1:9946}" ;;
    esac
}

# With WAIT_FOR=auto an S3 node also waits until its own bucket lists with its write key: the
# store is up, its one-shot initialiser has made the bucket, and the key is allowed.
wait_for_bucket() {
    [[ ${WAIT_FOR:-auto} == auto && ${GAUNTLET_STORAGE__BACKEND:-} == s3 ]] || return 0
    local tool
    tool="$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/store_init.py"
    python "$tool" wait-bucket --wait "${WAIT_TIMEOUT:-300}" || die "the node's bucket is not usable"
}

wait_for() { # TARGET...: each reachable over TCP within WAIT_TIMEOUT seconds, or exit
    local deadline=$((SECONDS + ${WAIT_TIMEOUT:-300})) target host port
    for target in "$@"; do
        read -r host port < <(host_port "$target")
        until timeout 3 bash -c ">/dev/tcp/$host/$port" 2>/dev/null; do
            if ((SECONDS >= deadline)); then
                die "$target is not reachable after ${WAIT_TIMEOUT:-300}s (WAIT_FOR=${WAIT_FOR:-auto})"
            fi
            sleep 2
        done
        log "$target is up"
    done
}

# --- roles ------------------------------------------------------------------------------------

# The localnet starts nodes that inherit its environment, where a GAUNTLET_* variable would
# override the per-run config the localnet writes for them (wallet paths, stores). So every
# setting becomes a flag of the localnet itself, which passes it on through that config.
settings_as_flags() {
    local name key section field
    FLAGS=()
    while IFS= read -r name; do
        [[ $name == GAUNTLET_* ]] || continue
        if [[ $name == GAUNTLET_CONFIG ]]; then
            FLAGS+=(--config "${!name}")
        else
            key=${name#GAUNTLET_}
            [[ $key == *__* ]] || die "$name is not a setting (GAUNTLET_<SECTION>__<FIELD>)"
            section=${key%%__*}
            field=${key#*__}
            FLAGS+=("--${section,,}.${field,,}" "${!name}")
        fi
        unset "$name"
    done < <(compgen -e | sort)
}

run_role() {
    local role=$1
    shift
    local -a extra=()
    [[ -n ${NODE_ARGS:-} ]] && read -r -a extra <<<"$NODE_ARGS"
    printf '%s\n' "$role" >"$ROLE_FILE" 2>/dev/null || true
    case $role in
    miner | validator)
        container_paths
        drop_foreign_secrets
        mapfile -t targets < <(wait_targets "$role")
        ((${#targets[@]} == 0)) || wait_for "${targets[@]}"
        wait_for_bucket
        local nproc=${NPROC_PER_NODE:-1}
        [[ $nproc =~ ^[1-9][0-9]*$ ]] || die "NPROC_PER_NODE must be a positive integer, got '$nproc'"
        if [[ $role == miner && $nproc -gt 1 ]]; then
            exec python -m torch.distributed.run --standalone --nproc-per-node "$nproc" \
                -m gauntlet.cli miner "${extra[@]}" "$@"
        fi
        exec gauntlet "$role" "${extra[@]}" "$@"
        ;;
    localnet)
        container_paths
        drop_foreign_secrets
        settings_as_flags
        exec gauntlet localnet "${FLAGS[@]}" "${extra[@]}" "$@"
        ;;
    chain)
        local db=${SIM_CHAIN_DB:-}
        if [[ -z $db ]]; then db=$([[ -d /state ]] && echo /state/chain.sqlite || echo chain.sqlite); fi
        exec gauntlet chain serve --host 0.0.0.0 --port "${SIM_CHAIN_PORT:-9946}" \
            --db "$db" --block-time "${SIM_CHAIN_BLOCK_TIME:-12}" "${extra[@]}" "$@"
        ;;
    esac
}

# --- healthcheck ------------------------------------------------------------------------------

healthcheck() {
    local role
    role=$(cat "$ROLE_FILE" 2>/dev/null || printf '%s' "${NODE_ROLE:-}")
    case $role in
    miner | validator)
        container_paths
        # Ask gauntlet's own config loader, so a port set in GAUNTLET_CONFIG's file counts too.
        exec python - <<'EOF'
import sys
import urllib.request

from gauntlet.config import load_config

telemetry = getattr(load_config(), "telemetry", None)
port = getattr(telemetry, "metrics_port", 0)
if not port:
    sys.exit(0)  # no metrics server configured: the process being up is all there is to check
host = getattr(telemetry, "metrics_host", "127.0.0.1")
host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
try:
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as reply:
        sys.exit(0 if reply.status == 200 else 1)
except OSError as exc:
    print(f"metrics endpoint {host}:{port} not answering: {exc}", file=sys.stderr)
    sys.exit(1)
EOF
        ;;
    chain)
        exec python -c 'import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/health", timeout=5)' "${SIM_CHAIN_PORT:-9946}"
        ;;
    *) exit 0 ;;
    esac
}

main() {
    local first=${1:-}
    case $first in
    miner | validator | localnet)
        shift
        run_role "$first" "$@"
        ;;
    chain)
        shift
        # `chain` alone (or with flags) serves the simulated chain; `chain status` etc. pass through.
        if [[ $# -eq 0 || ${1:-} == -* ]]; then run_role chain "$@"; fi
        exec gauntlet chain "$@"
        ;;
    healthcheck) healthcheck ;;
    help | --help | -h)
        usage
        ;;
    "" | -*)
        [[ -n ${NODE_ROLE:-} ]] || {
            usage
            die "no role: pass one (miner, validator, localnet, chain) or set NODE_ROLE"
        }
        case $NODE_ROLE in
        miner | validator | localnet | chain) run_role "$NODE_ROLE" "$@" ;;
        *) die "NODE_ROLE must be miner, validator, localnet or chain, got '$NODE_ROLE'" ;;
        esac
        ;;
    config | data | model)
        container_paths
        exec gauntlet "$@"
        ;;
    *) exec "$@" ;;
    esac
}

main "$@"
