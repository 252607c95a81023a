"""SPEC "Commitment rules per network": what a node may open, decided before opening it."""

from __future__ import annotations

import pytest

from protocol.commitment import (
    CommitmentPolicy,
    FilesystemCommitment,
    S3Commitment,
    check_commitment,
)
from protocol.errors import BadCommitment

ROOT = "/srv/gauntlet/stores"
SIM = CommitmentPolicy.for_network("sim", filesystem_root=ROOT)
FINNEY = CommitmentPolicy.for_network("finney", filesystem_root=ROOT)
FINNEY_PRIVATE_OK = CommitmentPolicy.for_network(
    "finney", filesystem_root=ROOT, private_endpoints=True
)


def s3(endpoint: str) -> S3Commitment:
    return S3Commitment(bucket="b", endpoint=endpoint, access_key="a", secret_key="s")


def fs(root: str, bucket: str = "gauntlet-x") -> FilesystemCommitment:
    return FilesystemCommitment(root=root, bucket=bucket)


# --- filesystem ----------------------------------------------------------------------------------


def test_filesystem_commitment_under_the_root_is_accepted_on_the_simulated_chain() -> None:
    check_commitment(fs(ROOT), SIM)
    check_commitment(
        fs(ROOT + "/nested"), CommitmentPolicy.for_network("local", filesystem_root=ROOT)
    )


@pytest.mark.parametrize("network", ["finney", "test"])
def test_filesystem_commitment_is_refused_on_real_networks(network) -> None:
    with pytest.raises(BadCommitment, match="development"):
        check_commitment(fs(ROOT), CommitmentPolicy.for_network(network, filesystem_root=ROOT))


@pytest.mark.parametrize(
    ("root", "bucket"),
    [
        ("/etc", "passwd"),
        ("/srv/gauntlet", "stores"),
        ("/srv/gauntlet/stores-other", "b"),
        (ROOT + "/../../..", "etc"),
        ("srv/gauntlet/stores", "b"),
        (ROOT, ".."),
        (ROOT, "a\\b"),
        (ROOT + "\x00", "b"),
    ],
)
def test_filesystem_commitment_outside_the_root_is_refused(root, bucket) -> None:
    with pytest.raises(BadCommitment):
        check_commitment(fs(root, bucket), SIM)


# --- S3 endpoints --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://abc123.r2.cloudflarestorage.com",
        "https://s3.us-east-1.amazonaws.com/",
        "https://minio.example.org:9000",
        "https://8.8.8.8",
        "https://[2606:4700::1111]:443",
    ],
)
def test_public_https_endpoint_is_accepted_on_real_networks(endpoint) -> None:
    check_commitment(s3(endpoint), FINNEY)


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://abc123.r2.cloudflarestorage.com",
        "ftp://example.com",
        "https://user:pw@example.com",
        "https://example.com/bucket",
        "https://example.com?x=1",
        "https://example.com:99999",
        "https://",
    ],
)
def test_endpoint_that_is_not_a_plain_https_origin_is_refused_on_real_networks(endpoint) -> None:
    with pytest.raises(BadCommitment):
        check_commitment(s3(endpoint), FINNEY)


PRIVATE = [
    "https://127.0.0.1",
    "https://127.0.0.1:9000",
    "https://[::1]",
    "https://169.254.169.254",  # cloud metadata service
    "https://10.0.0.5",
    "https://192.168.1.1",
    "https://172.16.0.1",
    "https://100.64.0.1",
    "https://0.0.0.0",
    "https://[::ffff:127.0.0.1]",
    "https://[fe80::1]",
    "https://localhost",
    "https://bucket.localhost",
    "https://nas.local",
    "https://metadata.google.internal",
    # spellings resolvers turn into 127.0.0.1 but ipaddress does not recognise
    "https://127.1",
    "https://2130706433",
    "https://0x7f000001",
    "https://0x7f.1",
]


@pytest.mark.parametrize("endpoint", PRIVATE)
def test_loopback_link_local_and_private_endpoints_are_refused_on_real_networks(endpoint) -> None:
    with pytest.raises(BadCommitment):
        check_commitment(s3(endpoint), FINNEY)


@pytest.mark.parametrize(
    "endpoint", ["https://127.0.0.1:9000", "https://10.0.0.5", "https://nas.local"]
)
def test_operator_setting_allows_private_endpoints_but_still_requires_https(endpoint) -> None:
    check_commitment(s3(endpoint), FINNEY_PRIVATE_OK)
    with pytest.raises(BadCommitment):
        check_commitment(s3(endpoint.replace("https", "http")), FINNEY_PRIVATE_OK)


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:43211", "http://seaweedfs:8333"])
def test_development_networks_accept_plain_http_on_loopback_and_private_hosts(endpoint) -> None:
    # the localnet's rclone servers and the compose file's SeaweedFS
    check_commitment(s3(endpoint), SIM)
    check_commitment(s3(endpoint), CommitmentPolicy.for_network("local", filesystem_root=ROOT))
