"""PCR derivations, checked against genuine documents where the recipe is known."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cbor2
import pytest

from attestation.testing.measurements import (
    BootMeasurements,
    eif_measurement,
    extend,
    string_measurement,
)

GENUINE = [
    "blindai-nitro_attestation_document_valid",
    "blocky-nitrite-nitro_attestation",
    "evervault-beta-valid",
    "evervault-ga-valid",
    "hf-nitrite_test",
    "yawn-nitro-attest-attestation",
]


@pytest.mark.parametrize("name", GENUINE)
def test_pcr4_matches_genuine_documents(fixtures_dir: Path, name: str) -> None:
    payload = cbor2.loads(cbor2.loads((fixtures_dir / "nitro" / f"{name}.cose").read_bytes())[2])
    instance_id = payload["module_id"].split("-enc")[0]
    assert string_measurement(instance_id) == payload["pcrs"][4]


def test_eif_measurement_extends_with_the_digest() -> None:
    data = b"kernel bytes"
    assert (
        eif_measurement(data) == hashlib.sha384(bytes(48) + hashlib.sha384(data).digest()).digest()
    )
    assert eif_measurement(data) != string_measurement("kernel bytes")


def test_extend_chains() -> None:
    assert (
        extend(extend(bytes(48), b"a"), b"b")
        == hashlib.sha384(hashlib.sha384(bytes(48) + b"a").digest() + b"b").digest()
    )


def test_boot_measurements_fill_the_right_pcrs() -> None:
    cert = b"\x30\x82signing-cert"
    m = BootMeasurements(
        image=b"i", bootstrap=b"b", application=b"a", role_arn="arn:aws:iam::1:role/r",
        instance_id="i-0", signing_certificate=cert,
    )  # fmt: skip
    pcrs = m.pcrs()
    assert sorted(pcrs) == list(range(16))
    assert pcrs[0] == eif_measurement(b"i")
    assert pcrs[1] == eif_measurement(b"b")
    assert pcrs[2] == eif_measurement(b"a")
    assert pcrs[3] == string_measurement("arn:aws:iam::1:role/r")
    assert pcrs[4] == string_measurement("i-0")
    assert pcrs[8] == eif_measurement(cert)
    assert all(pcrs[i] == bytes(48) for i in (5, 6, 7, *range(9, 16)))


def test_debug_mode_zeroes_only_pcr0_to_2() -> None:
    m = BootMeasurements(
        image=b"i", bootstrap=b"b", application=b"a", instance_id="i-0", debug=True
    )
    pcrs = m.pcrs()
    assert [pcrs[i] for i in range(3)] == [bytes(48)] * 3
    assert pcrs[4] == string_measurement("i-0")


def test_no_role_means_zero_pcr3() -> None:
    assert BootMeasurements(instance_id="i-0").pcrs()[3] == bytes(48)
