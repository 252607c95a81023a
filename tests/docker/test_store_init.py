"""docker/store_init.py: SeaweedFS identities from .env, bucket creation and the key check."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from docker_helpers import load_script

from gauntlet.storage.local_servers import LocalServer, start_moto

store_init = load_script("store_init")


def _keys(role: str, bucket: str | None = None) -> dict[str, str]:
    env = {
        f"{role}_WRITE_ACCESS_KEY_ID": f"W{role[:3]}{secrets.token_hex(6).upper()}",
        f"{role}_WRITE_SECRET_ACCESS_KEY": secrets.token_hex(20),
        f"{role}_READ_ACCESS_KEY_ID": f"R{role[:3]}{secrets.token_hex(6).upper()}",
        f"{role}_READ_SECRET_ACCESS_KEY": secrets.token_hex(20),
    }
    if bucket:
        env[f"{role}_BUCKET"] = bucket
    return env


ADMIN = {"STORE_ADMIN_ACCESS_KEY_ID": "ADMINKEY", "STORE_ADMIN_SECRET_ACCESS_KEY": "adminsecret"}


def test_identities_scope_each_node_key_to_its_own_bucket(tmp_path: Path) -> None:
    env = {**ADMIN, **_keys("MINER", "m-bucket"), **_keys("VALIDATOR", "v-bucket")}
    out = tmp_path / "config" / "s3.json"
    assert store_init.main(["config", "--out", str(out)], env) == 0
    identities = {i["name"]: i for i in json.loads(out.read_text())["identities"]}
    assert set(identities) == {
        "admin",
        "miner-write",
        "miner-read",
        "validator-write",
        "validator-read",
    }
    assert identities["miner-write"]["actions"] == [
        "Read:m-bucket",
        "Write:m-bucket",
        "List:m-bucket",
    ]
    assert identities["miner-read"]["actions"] == ["Read:m-bucket", "List:m-bucket"]
    assert identities["validator-read"]["actions"] == ["Read:v-bucket", "List:v-bucket"]
    assert identities["miner-read"]["credentials"] == [
        {
            "accessKey": env["MINER_READ_ACCESS_KEY_ID"],
            "secretKey": env["MINER_READ_SECRET_ACCESS_KEY"],
        }
    ]
    assert "anonymous" not in identities


def test_a_role_without_keys_is_skipped() -> None:
    nodes = store_init.node_buckets({**ADMIN, **_keys("MINER")})
    assert [(n.role, n.bucket) for n in nodes] == [("miner", "gauntlet-miner")]


def test_a_partly_configured_role_names_the_missing_variables(capsys) -> None:
    env = {**ADMIN, **_keys("VALIDATOR")}
    del env["VALIDATOR_READ_SECRET_ACCESS_KEY"]
    assert store_init.main(["config", "--out", "/nonexistent/s3.json"], env) == 1
    assert "VALIDATOR_READ_SECRET_ACCESS_KEY" in capsys.readouterr().err


def test_no_keys_at_all_points_at_the_key_generator(capsys) -> None:
    assert store_init.main(["config", "--out", "/nonexistent/s3.json"], dict(ADMIN)) == 1
    assert "new-keys.sh" in capsys.readouterr().err


@pytest.mark.parametrize("bucket", ["UPPER", "ab", "under_score", "-leading"])
def test_invalid_bucket_names_are_refused(bucket: str) -> None:
    with pytest.raises(store_init.SetupError, match="not a valid bucket name"):
        store_init.node_buckets(_keys("MINER", bucket))


def test_a_read_key_equal_to_the_write_key_is_refused() -> None:
    env = _keys("MINER")
    env["MINER_READ_ACCESS_KEY_ID"] = env["MINER_WRITE_ACCESS_KEY_ID"]
    with pytest.raises(store_init.SetupError, match="must differ"):
        store_init.node_buckets(env)


def test_config_needs_the_admin_key(capsys) -> None:
    assert store_init.main(["config", "--out", "/nonexistent/s3.json"], _keys("MINER")) == 1
    assert "STORE_ADMIN_ACCESS_KEY_ID" in capsys.readouterr().err


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    server = start_moto(tmp_path_factory.mktemp("moto-store-init"))
    yield server
    server.stop()


def test_buckets_are_created_once_and_a_writable_read_key_is_reported(
    moto: LocalServer, capsys
) -> None:
    # moto accepts any key for anything, so the check must flag the read key's write access:
    # that is exactly the misconfiguration it exists to catch on a real store.
    env = {
        **ADMIN,
        **_keys("MINER", f"m-{secrets.token_hex(4)}"),
        "STORE_ENDPOINT": moto.endpoint_url,
    }
    assert store_init.main(["buckets", "--wait", "10"], env) == 1
    first = capsys.readouterr()
    assert "created bucket" in first.out
    assert "the read key can write" in first.err
    assert "put failed" not in first.err and "get failed" not in first.err
    assert store_init.main(["buckets", "--wait", "10"], env) == 1  # idempotent
    assert "exists" in capsys.readouterr().out


def test_check_reports_a_missing_bucket(moto: LocalServer, capsys) -> None:
    env = {**_keys("VALIDATOR", f"v-{secrets.token_hex(4)}"), "STORE_ENDPOINT": moto.endpoint_url}
    assert store_init.main(["check", "--wait", "10"], env) == 1
    assert "write key: put failed: NoSuchBucket" in capsys.readouterr().err


def test_wait_bucket_waits_for_the_nodes_own_bucket(moto: LocalServer, capsys) -> None:
    bucket = f"n-{secrets.token_hex(4)}"
    env = {
        "GAUNTLET_STORAGE__ENDPOINT": moto.endpoint_url,
        "GAUNTLET_STORAGE__BUCKET": bucket,
        "GAUNTLET_STORAGE__WRITE_ACCESS_KEY_ID": "K",
        "GAUNTLET_STORAGE__WRITE_SECRET_ACCESS_KEY": "S",
    }
    assert store_init.main(["wait-bucket", "--wait", "1"], env) == 1
    assert "NoSuchBucket" in capsys.readouterr().err
    store_init.create_buckets(
        moto.endpoint_url, "us-east-1", ("A", "B"), store_init.node_buckets(_keys("MINER", bucket))
    )
    assert store_init.main(["wait-bucket", "--wait", "5"], env) == 0
    assert f"bucket {bucket}" in capsys.readouterr().out


def test_wait_bucket_without_a_bucket_name_does_not_wait() -> None:
    assert store_init.main(["wait-bucket", "--wait", "0"], {}) == 0
