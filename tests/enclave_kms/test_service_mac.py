"""GenerateMac and VerifyMac with HMAC keys, on both stores: every MAC is also computed with
Python's ``hmac`` on the key material the service drew."""

from __future__ import annotations

import hmac
from pathlib import Path

import pytest
from signing_support import (
    HMAC_SPECS,
    MESSAGE,
    recording_randbytes,
)
from test_service_support import (
    ACCOUNT,
    ROOT_CALLER,
    PinnedClock,
    make_service,
    new_key,
)
from test_service_support import clock as clock
from test_service_support import db_path as db_path
from test_service_support import service as service

from enclave_kms.errors import (
    InvalidKeyUsageException,
    KMSInvalidMacException,
)
from enclave_kms.model import (
    GenerateMacRequest,
    VerifyMacRequest,
)
from enclave_kms.service import KmsService


@pytest.mark.parametrize("spec", sorted(HMAC_SPECS))
def test_hmac_round_trips_match_python_hmac(
    db_path: Path | str, clock: PinnedClock, spec: str
) -> None:
    algorithm, hash_fn, size = HMAC_SPECS[spec]
    randbytes, drawn = recording_randbytes()
    service = make_service(db_path, clock, randbytes=randbytes)
    try:
        kid = new_key(service, key_spec=spec, key_usage="GENERATE_VERIFY_MAC")
        r = service.generate_mac(
            ROOT_CALLER, GenerateMacRequest(key_id=kid, message=MESSAGE, mac_algorithm=algorithm)
        )
        assert (r.mac_algorithm, r.key_id) == (
            algorithm,
            f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/{kid}",
        )
        # The key is one draw of the spec's size from the service's randomness: the MAC is
        # HMAC under exactly that draw (checked with Python's hmac, not the service's code).
        keys = [
            k
            for k in drawn
            if hmac.compare_digest(hmac.new(k, MESSAGE, hash_fn).digest(), r.mac or b"")
        ]
        assert [len(k) for k in keys] == [size]
        v = service.verify_mac(
            ROOT_CALLER,
            VerifyMacRequest(key_id=kid, message=MESSAGE, mac=r.mac, mac_algorithm=algorithm),
        )
        assert (v.mac_valid, v.mac_algorithm, v.key_id) == (True, algorithm, r.key_id)
    finally:
        service.close()


def test_verify_mac_mismatch_is_invalid_mac(service: KmsService) -> None:
    kid = new_key(service, key_spec="HMAC_256", key_usage="GENERATE_VERIFY_MAC")
    other = new_key(service, key_spec="HMAC_256", key_usage="GENERATE_VERIFY_MAC")

    def mac_of(key: str, message: bytes) -> bytes:
        r = service.generate_mac(
            ROOT_CALLER,
            GenerateMacRequest(key_id=key, message=message, mac_algorithm="HMAC_SHA_256"),
        )
        assert r.mac is not None and len(r.mac) == 32
        return r.mac

    good = mac_of(kid, MESSAGE)
    assert mac_of(kid, MESSAGE) == good  # HMAC is deterministic
    for message, mac in (
        (MESSAGE + b"!", good),
        (MESSAGE, good[:-1]),  # truncated
        (MESSAGE, good + b"\x00"),  # extended
        (MESSAGE, bytes([good[0] ^ 1]) + good[1:]),
        (MESSAGE, mac_of(other, MESSAGE)),  # another key
    ):
        with pytest.raises(KMSInvalidMacException) as err:
            service.verify_mac(
                ROOT_CALLER,
                VerifyMacRequest(
                    key_id=kid, message=message, mac=mac, mac_algorithm="HMAC_SHA_256"
                ),
            )
        assert err.value.http_status == 400
    for request in (
        GenerateMacRequest(key_id=kid, message=MESSAGE, mac_algorithm="HMAC_SHA_512"),
        VerifyMacRequest(key_id=kid, message=MESSAGE, mac=good, mac_algorithm="HMAC_SHA_384"),
    ):
        with pytest.raises(InvalidKeyUsageException, match="incompatible with key spec HMAC_256"):
            if isinstance(request, GenerateMacRequest):
                service.generate_mac(ROOT_CALLER, request)
            else:
                service.verify_mac(ROOT_CALLER, request)
