"""On a real network a node whose bucket commitment readers would refuse (http, loopback,
link-local, private) finds out at start, in one line, before the chain is contacted; on the
development networks, or with private endpoints allowed, it starts. The check is the very
rule readers apply, so the two cannot disagree."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from gauntlet.config import GauntletConfig, load_config
from gauntlet.node.identity import create_wallet
from gauntlet.node.peers import PeerDirectory, reader_policy
from gauntlet.node.runtime import StartupError, default_bucket, open_runtime, own_commitment
from gauntlet.node.store_check import StoreCheckError, check_reachable
from gauntlet.storage.local_servers import free_port
from protocol.commitment import encode_commitment


def _config(tmp_path: Path, network: str, endpoint: str, **storage: object) -> GauntletConfig:
    return load_config(
        overrides={
            "chain": {"network": network, "endpoint": f"http://127.0.0.1:{free_port()}"},
            "wallet": {"path": str(tmp_path / "wallets"), "name": "m"},
            "storage": {
                "backend": "s3",
                "root": str(tmp_path / "stores"),
                "endpoint": endpoint,
                "write_access_key_id": "w",
                "write_secret_access_key": "ws",
                "read_access_key_id": "r",
                "read_secret_access_key": "rs",
                **storage,
            },
            "node": {"state_dir": str(tmp_path / "state")},
        },
        environ={},
    )


def _start(config: GauntletConfig) -> None:
    asyncio.run(open_runtime(config))


@pytest.mark.parametrize(
    ("endpoint", "why"),
    [
        ("http://10.0.0.5:9000", "scheme 'http', expected https"),
        ("https://10.0.0.5:9000", "address 10.0.0.5 is not a public address"),
        ("https://127.0.0.1:9000", "address 127.0.0.1 is not a public address"),
        ("https://169.254.169.254", "address 169.254.169.254 is not a public address"),
        ("https://minio.internal", "is a local-only name"),
    ],
)
def test_an_endpoint_readers_would_refuse_stops_the_start_on_a_real_network(
    tmp_path: Path, endpoint: str, why: str
) -> None:
    create_wallet(tmp_path / "wallets", "m")
    with pytest.raises(StartupError) as refused:
        _start(_config(tmp_path, "finney", endpoint))
    message = str(refused.value)
    assert message.startswith(
        f"own bucket: validators on finney would refuse the bucket endpoint {endpoint}"
    )
    assert why in message
    assert "set storage.endpoint to a public https URL" in message
    # only an address problem can be lifted by allowing private endpoints; a scheme cannot
    assert ("storage.peer_private_endpoints true" in message) == endpoint.startswith("https")


def test_a_filesystem_bucket_on_a_real_network_is_refused_at_start(tmp_path: Path) -> None:
    create_wallet(tmp_path / "wallets", "m")
    config = _config(tmp_path, "test", "", backend="filesystem")
    with pytest.raises(StartupError, match="validators on test read no filesystem buckets"):
        _start(config)


@pytest.mark.parametrize("network", ["sim", "local"])
def test_a_private_http_endpoint_is_fine_on_a_development_network(
    tmp_path: Path, network: str
) -> None:
    """The start gets past the check to the chain (which is not there)."""
    if network == "local":  # a local subtensor: the SDK, not needed to see the check pass
        config = _config(tmp_path, network, "http://127.0.0.1:9000")
        bucket = default_bucket("5" + "x" * 47)
        check_reachable(own_commitment(config, bucket), reader_policy(config), network)
        return
    create_wallet(tmp_path / "wallets", "m")
    with pytest.raises(StartupError, match="chain sim at .* is unreachable"):
        _start(_config(tmp_path, network, "http://127.0.0.1:9000"))


def test_a_private_https_endpoint_passes_when_the_operator_allows_private_endpoints(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = _config(tmp_path, "finney", "https://10.0.0.5:9000", peer_private_endpoints=True)
    with caplog.at_level(logging.WARNING, logger="gauntlet.node.store_check"):
        check_reachable(own_commitment(config, "b"), reader_policy(config), "finney")
    assert "only if they set storage.peer_private_endpoints" in caplog.text
    http = _config(tmp_path, "finney", "http://10.0.0.5:9000", peer_private_endpoints=True)
    with pytest.raises(StoreCheckError, match="scheme 'http', expected https"):
        check_reachable(own_commitment(http, "b"), reader_policy(http), "finney")


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://s3.example.com",
        "https://203.0.113.9:9000",  # documentation range: not global
        "https://8.8.8.8",
        "http://s3.example.com",
        "https://[::1]:9000",
        "https://[::ffff:10.0.0.1]",
        "https://127.1",
        "https://bucket.localhost",
        "https://s3.example.com/path",
    ],
)
@pytest.mark.parametrize("allow_private", [False, True])
def test_the_start_check_and_the_readers_agree(
    tmp_path: Path, endpoint: str, allow_private: bool
) -> None:
    """A reader with the node's config opens exactly the commitments the check lets through."""
    config = _config(tmp_path, "finney", endpoint, peer_private_endpoints=allow_private)
    published = own_commitment(config, "b")
    try:
        check_reachable(published, reader_policy(config), "finney")
        passed = True
    except StoreCheckError:
        passed = False
    opened = PeerDirectory.for_config(config).store_for("5H", encode_commitment(published))
    assert passed == (opened is not None)
    if opened is not None:
        asyncio.run(opened.close())
