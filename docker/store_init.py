"""One-shot set-up and check of the nodes' S3 buckets (docker/compose.yml runs it).

    python store_init.py config --out /config/s3.json   SeaweedFS identities, before it starts
    python store_init.py buckets                        create the buckets, then check the keys
    python store_init.py check                          only check the keys (R2, S3, any store)
    python store_init.py wait-bucket                    a node's entry point: wait until its own
                                                        bucket lists with its write key

Everything comes from the environment, the same variables as .env:

    STORE_ENDPOINT, STORE_REGION                      the S3 endpoint the nodes write to
    STORE_ADMIN_ACCESS_KEY_ID, ..._SECRET_ACCESS_KEY  the store's admin key (config, buckets)
    MINER_BUCKET, MINER_WRITE_ACCESS_KEY_ID, MINER_WRITE_SECRET_ACCESS_KEY,
    MINER_READ_ACCESS_KEY_ID, MINER_READ_SECRET_ACCESS_KEY      (and the same for VALIDATOR_)

(wait-bucket reads the node's own GAUNTLET_STORAGE__* settings instead.)
A role whose four keys are all empty is skipped (a host that runs only a miner). Each
node gets a write identity limited to its bucket and a read identity that may only read
and list it: the read pair is published on chain, so anyone holding it must not write.
The check proves exactly that against the live store, so a wrong policy fails here, with
the reason, instead of as missing contributions windows later.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROLES = ("MINER", "VALIDATOR")
KEY_FIELDS = (
    "WRITE_ACCESS_KEY_ID",
    "WRITE_SECRET_ACCESS_KEY",
    "READ_ACCESS_KEY_ID",
    "READ_SECRET_ACCESS_KEY",
)
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
PROBE_PREFIX = "gauntlet-store-check/"


class SetupError(RuntimeError):
    """The environment or the store is not set up right; the message says what to change."""


@dataclass(frozen=True)
class NodeBucket:
    role: str  # "miner" or "validator"
    bucket: str
    write: tuple[str, str]
    read: tuple[str, str]


def node_buckets(env: dict[str, str]) -> list[NodeBucket]:
    """The roles that have keys in ``env``; a partly filled role is an error."""
    found = []
    for role in ROLES:
        values = {field: env.get(f"{role}_{field}", "") for field in KEY_FIELDS}
        if not any(values.values()):
            continue
        missing = [f"{role}_{field}" for field, value in values.items() if not value]
        if missing:
            raise SetupError(f"set {', '.join(missing)} in .env (or empty all of {role}'s keys)")
        bucket = env.get(f"{role}_BUCKET", "") or f"gauntlet-{role.lower()}"
        if not BUCKET_RE.match(bucket):
            raise SetupError(
                f"{role}_BUCKET={bucket!r} is not a valid bucket name "
                "(3-63 characters: lowercase letters, digits, dots, hyphens)"
            )
        write = (values["WRITE_ACCESS_KEY_ID"], values["WRITE_SECRET_ACCESS_KEY"])
        read = (values["READ_ACCESS_KEY_ID"], values["READ_SECRET_ACCESS_KEY"])
        if write[0] == read[0]:
            raise SetupError(f"{role}'s read and write access key ids must differ")
        found.append(NodeBucket(role.lower(), bucket, write, read))
    if not found:
        raise SetupError(
            "no node keys in the environment: set MINER_* and/or VALIDATOR_* keys in .env "
            "(`bash docker/new-keys.sh >> .env` makes random ones)"
        )
    keys = [k for nb in found for k in (nb.write[0], nb.read[0])]
    if len(set(keys)) != len(keys):
        raise SetupError("every access key id in .env must be different")
    return found


def admin_key(env: dict[str, str]) -> tuple[str, str]:
    key = env.get("STORE_ADMIN_ACCESS_KEY_ID", ""), env.get("STORE_ADMIN_SECRET_ACCESS_KEY", "")
    if not all(key):
        raise SetupError("set STORE_ADMIN_ACCESS_KEY_ID and STORE_ADMIN_SECRET_ACCESS_KEY in .env")
    return key


def seaweedfs_identities(admin: tuple[str, str], nodes: list[NodeBucket]) -> dict[str, Any]:
    """SeaweedFS's static S3 identities (``weed server -s3.config``): an admin that creates
    buckets, then per node a write identity and a read identity scoped to its bucket.
    No ``anonymous`` identity, so unsigned requests are refused."""

    def identity(name: str, key: tuple[str, str], actions: list[str]) -> dict[str, Any]:
        creds = [{"accessKey": key[0], "secretKey": key[1]}]
        return {"name": name, "credentials": creds, "actions": actions}

    identities = [identity("admin", admin, ["Admin", "Read", "Write", "List", "Tagging"])]
    for nb in nodes:
        b = nb.bucket
        identities.append(
            identity(f"{nb.role}-write", nb.write, [f"Read:{b}", f"Write:{b}", f"List:{b}"])
        )
        identities.append(identity(f"{nb.role}-read", nb.read, [f"Read:{b}", f"List:{b}"]))
    return {"identities": identities}


def write_config(path: Path, config: dict[str, Any]) -> None:
    """Atomically. Mode 0644: SeaweedFS may run as another uid; the file's only home is a
    volume that compose mounts into SeaweedFS and this tool, nowhere else."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "w") as f:
        json.dump(config, f, indent=2)
    os.replace(tmp, path)


# --- against a live store ---------------------------------------------------------------------


def _client(endpoint: str, region: str, key: tuple[str, str]) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint or None,
        region_name=region,
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
        config=Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 2},
            connect_timeout=5,
            read_timeout=30,
        ),
    )


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__))


def wait_until_answering(endpoint: str, region: str, key: tuple[str, str], timeout: float) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    client, deadline = _client(endpoint, region, key), time.monotonic() + timeout
    while True:
        try:
            client.list_buckets()
            return
        except ClientError:
            return  # an S3 answer, even a refusal, means it is serving
        except BotoCoreError as exc:
            if time.monotonic() > deadline:
                raise SetupError(f"no S3 server at {endpoint} after {timeout:.0f}s: {exc}") from exc
            time.sleep(1)


def create_buckets(endpoint: str, region: str, admin: tuple[str, str], nodes: list[NodeBucket]):
    from botocore.exceptions import ClientError

    client = _client(endpoint, region, admin)
    for nb in nodes:
        try:
            client.head_bucket(Bucket=nb.bucket)
            print(f"store-init: bucket {nb.bucket} exists")
            continue
        except ClientError as exc:
            if _code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise SetupError(f"cannot look up bucket {nb.bucket}: {_code(exc)}") from exc
        try:
            client.create_bucket(Bucket=nb.bucket)
        except ClientError as exc:
            if _code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise SetupError(f"cannot create bucket {nb.bucket}: {_code(exc)}") from exc
        print(f"store-init: created bucket {nb.bucket}")


def check_keys(endpoint: str, region: str, nb: NodeBucket) -> list[str]:
    """Problems with ``nb``'s keys on the live store (empty: all good). The write key must
    put, read, list and delete; the read key must read and list, and must not put."""
    from botocore.exceptions import BotoCoreError, ClientError

    problems: list[str] = []
    writer, reader = _client(endpoint, region, nb.write), _client(endpoint, region, nb.read)
    key, body = PROBE_PREFIX + secrets.token_hex(8), secrets.token_bytes(32)
    where = f"{nb.role} bucket {nb.bucket}"

    def attempt(what: str, fn: Any, **kwargs: Any) -> Any:
        try:
            return fn(Bucket=nb.bucket, **kwargs)
        except (ClientError, BotoCoreError) as exc:
            problems.append(f"{where}: {what} failed: {_code(exc)}")
            return None

    if attempt("write key: put", writer.put_object, Key=key, Body=body) is None:
        return problems  # nothing to read back
    got = attempt("write key: get", writer.get_object, Key=key)
    if got is not None and got["Body"].read() != body:
        problems.append(f"{where}: write key: read back different bytes")
    attempt("write key: list", writer.list_objects_v2, Prefix=PROBE_PREFIX)
    got = attempt("read key: get", reader.get_object, Key=key)
    if got is not None and got["Body"].read() != body:
        problems.append(f"{where}: read key: read back different bytes")
    attempt("read key: list", reader.list_objects_v2, Prefix=PROBE_PREFIX)
    try:
        reader.put_object(Bucket=nb.bucket, Key=key + "-read-key", Body=b"x")
        problems.append(
            f"{where}: the read key can write. It is published on chain: give it read and "
            "list permissions only"
        )
        writer.delete_object(Bucket=nb.bucket, Key=key + "-read-key")
    except ClientError as exc:
        if _code(exc) not in ("AccessDenied", "Forbidden", "403"):
            problems.append(f"{where}: read key put refused oddly: {_code(exc)}")
    attempt("write key: delete", writer.delete_object, Key=key)
    return problems


def wait_for_bucket(env: dict[str, str], timeout: float) -> str:
    """Until the node's bucket lists with its write key (the store is up, the bucket exists,
    the key is allowed), repeating the reason it does not yet; returns what it waited for."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket = env.get("GAUNTLET_STORAGE__BUCKET", "")
    endpoint = env.get("GAUNTLET_STORAGE__ENDPOINT", "")
    key = (
        env.get("GAUNTLET_STORAGE__WRITE_ACCESS_KEY_ID", ""),
        env.get("GAUNTLET_STORAGE__WRITE_SECRET_ACCESS_KEY", ""),
    )
    if not bucket or not all(key):
        return "nothing (no bucket name or write key set; the node will report what is missing)"
    region = env.get("GAUNTLET_STORAGE__REGION", "") or "us-east-1"
    client, deadline, said = _client(endpoint, region, key), time.monotonic() + timeout, 0.0
    while True:
        try:
            client.list_objects_v2(Bucket=bucket, MaxKeys=1)
            return f"bucket {bucket} at {endpoint or 'AWS S3'}"
        except (ClientError, BotoCoreError) as exc:
            reason = f"bucket {bucket} at {endpoint or 'AWS S3'} not usable yet: {_code(exc)}"
        if time.monotonic() > deadline:
            raise SetupError(f"{reason} (gave up after {timeout:.0f}s)")
        if time.monotonic() - said > 15:
            print(f"store-init: {reason}", file=sys.stderr, flush=True)
            said = time.monotonic()
        time.sleep(2)


def main(argv: list[str] | None = None, env: dict[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="store_init.py", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["config", "buckets", "check", "wait-bucket"])
    parser.add_argument("--out", default="/config/s3.json", help="config: file to write")
    parser.add_argument("--wait", type=float, default=120.0, help="seconds to wait for the store")
    args = parser.parse_args(argv)
    env = dict(os.environ) if env is None else env
    endpoint = env.get("STORE_ENDPOINT", "http://seaweedfs:8333")
    region = env.get("STORE_REGION", "") or "us-east-1"
    try:
        if args.action == "wait-bucket":
            print(f"store-init: waited for {wait_for_bucket(env, args.wait)}", flush=True)
            return 0
        nodes = node_buckets(env)
        if args.action == "config":
            write_config(Path(args.out), seaweedfs_identities(admin_key(env), nodes))
            print(f"store-init: wrote {len(nodes) * 2 + 1} identities to {args.out}")
            return 0
        first_key = admin_key(env) if args.action == "buckets" else nodes[0].write
        wait_until_answering(endpoint, region, first_key, args.wait)
        if args.action == "buckets":
            create_buckets(endpoint, region, admin_key(env), nodes)
        problems = [p for nb in nodes for p in check_keys(endpoint, region, nb)]
    except SetupError as exc:
        print(f"store-init: {exc}", file=sys.stderr)
        return 1
    for problem in problems:
        print(f"store-init: {problem}", file=sys.stderr)
    if not problems:
        print(f"store-init: keys of {', '.join(nb.role for nb in nodes)} checked at {endpoint}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
