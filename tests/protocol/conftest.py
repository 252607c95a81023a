"""Fixtures for the wire-contract tests: real sr25519 development keys and a valid payload."""

from __future__ import annotations

import pytest
from protocol_helpers import encode, tensors

from protocol.signing import keypair_from_uri


@pytest.fixture(scope="session")
def miner():
    return keypair_from_uri("//gauntlet/test/miner")


@pytest.fixture(scope="session")
def other():
    return keypair_from_uri("//gauntlet/test/other")


@pytest.fixture(scope="session")
def payload(miner) -> bytes:
    return encode(tensors(), miner)
