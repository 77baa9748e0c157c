"""Fixtures for the enclave SDK tests: a test PKI, simulated NSMs and boto3 KMS clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from enclave_sdk_helpers import CountingNsm, FakeClock

from attestation.nsm import Nsm
from attestation.testing.nsm import SimulatedNsm
from attestation.testing.pki import LONG_LIFETIMES, TestPki
from enclave_kms.enclave.session import EnclaveSession

# A PKI whose CAs are valid for years, so documents minted "now" verify in every test.
PKI_VALID_FROM = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="session")
def test_pki() -> TestPki:
    return TestPki.create(0x5D4_0001, valid_from=PKI_VALID_FROM, lifetimes=LONG_LIFETIMES)


@pytest.fixture(scope="session")
def pki_dir(test_pki: TestPki, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("pki")
    test_pki.save(directory)
    return directory


@pytest.fixture
def make_nsm(test_pki: TestPki) -> Callable[..., CountingNsm]:
    """Build a simulated NSM (optionally with given boot PCRs), wrapped to count requests."""

    def make(pcrs: Mapping[int, bytes] | None = None) -> CountingNsm:
        return CountingNsm(Nsm(SimulatedNsm(test_pki, pcrs=pcrs)))

    return make


@pytest.fixture
def kms_client() -> Any:
    return boto3.client(
        "kms",
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret-not-used",
        endpoint_url="http://127.0.0.1:9",
    )


@pytest.fixture
def stubbed(
    make_nsm: Callable[..., CountingNsm], kms_client: Any
) -> Iterator[tuple[EnclaveSession, Stubber, CountingNsm, FakeClock]]:
    """A session on a simulated NSM whose KMS client is a botocore Stubber."""
    nsm = make_nsm()
    clock = FakeClock()
    session = EnclaveSession(nsm=nsm, kms_client=kms_client, clock=clock)
    with Stubber(kms_client) as stubber:
        yield session, stubber, nsm, clock
        stubber.assert_no_pending_responses()
