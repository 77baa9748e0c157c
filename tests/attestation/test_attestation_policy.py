"""Policies: each check, construction-time validation, combinators and the JSON round trip."""

from __future__ import annotations

import hashlib
import json
import warnings
from datetime import timedelta
from functools import cache
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st
from nitro_test_helpers import T0, genuine_payload, mini_pki, raw, sidecar

from attestation import (
    MeasurementMismatchError,
    PolicyError,
    StaleDocumentError,
    VerifiedAttestation,
    Verifier,
    policy,
)

BLOCKY = "blocky-nitrite-nitro_attestation.cose"  # prod; PCR0,1,2,4; 1024-byte nonce
DEBUG = "blocky-nitrite-nitro_attestation_debug.cose"
YAWN = "yawn-nitro-attest-attestation.cose"  # prod; RSA public key
EVERVAULT = "evervault-beta-debug-mode.cose"  # public_key is ASCII text


@cache
def verified(name: str) -> VerifiedAttestation:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", policy.UnsafePolicyWarning)
        return Verifier().verify(raw(name), policy=policy.UnsafeNoOp(), at="document")


def pcr(name: str, index: int) -> bytes:
    return verified(name).pcrs[index]


# ---- PCR policies --------------------------------------------------------------------------


def test_pcr_matches_bytes_and_hex_of_any_case() -> None:
    value = pcr(BLOCKY, 0)
    for given_value in (value, value.hex(), value.hex().upper()):
        p = policy.PCR(0, given_value)
        assert p.value == value
        p.check(verified(BLOCKY))
    assert policy.PCR(0, value.hex().upper()) == policy.PCR(0, value)


def test_pcr_mismatch_carries_index_expected_actual() -> None:
    wrong = bytes(47) + b"\x01"
    with pytest.raises(MeasurementMismatchError) as info:
        policy.PCR(2, wrong).check(verified(BLOCKY))
    assert info.value.index == 2
    assert info.value.expected == wrong.hex()
    assert info.value.actual == pcr(BLOCKY, 2).hex()
    with pytest.raises(MeasurementMismatchError) as absent:
        policy.PCR(20, wrong).check(verified(BLOCKY))
    assert absent.value.actual is None


@pytest.mark.parametrize(
    ("index", "value"),
    [
        (0, "zz" * 48),
        (0, "0" * 95),
        (0, "00" * 47),
        (0, " " + "00" * 48),
        (0, "00 " * 48),
        (0, bytes(20)),
        (32, bytes(48)),
        (-1, bytes(48)),
        (True, bytes(48)),
        (0, 48),
    ],
)
def test_pcr_validated_when_built(index: Any, value: Any) -> None:
    with pytest.raises(ValueError):
        policy.PCR(index, value)


def test_pcrs_exact() -> None:
    good = {i: pcr(BLOCKY, i) for i in (0, 1, 2, 4)}
    policy.PCRs(good).check(verified(BLOCKY))
    with pytest.raises(MeasurementMismatchError) as info:
        policy.PCRs({**good, 4: pcr(YAWN, 4)}).check(verified(BLOCKY))
    assert info.value.index == 4
    with pytest.raises(ValueError):
        policy.PCRs({})


def test_image_measurement() -> None:
    side = sidecar(BLOCKY)["nonzero_pcrs"]
    accept = policy.ImageMeasurement(pcr0=side["0"], pcr1=side["1"], pcr2=side["2"])
    accept.check(verified(BLOCKY))
    policy.ImageMeasurement(pcr0=side["0"]).check(verified(BLOCKY))
    with pytest.raises(MeasurementMismatchError) as info:
        policy.ImageMeasurement(pcr0=side["0"], pcr2=side["1"]).check(verified(BLOCKY))
    assert info.value.index == 2
    with pytest.raises(MeasurementMismatchError):
        accept.check(verified(YAWN))
    with pytest.raises(ValueError, match="debug"):
        policy.ImageMeasurement(pcr0=bytes(48))
    with pytest.raises(TypeError):
        policy.ImageMeasurement(side["0"])  # type: ignore[call-arg]  # keyword-only


def test_reject_debug_mode() -> None:
    policy.RejectDebugMode().check(verified(BLOCKY))
    policy.RejectDebugMode().check(verified(YAWN))
    for name in (DEBUG, EVERVAULT, "hf-nitrite_test.cose"):
        with pytest.raises(PolicyError, match="debug"):
            policy.RejectDebugMode().check(verified(name))


def test_pcr_helpers() -> None:
    # PCR4 = SHA-384(0^48 || instance id) holds on every genuine document (§3).
    for name in (BLOCKY, DEBUG, YAWN, EVERVAULT):
        instance = verified(name).module_id.split("-enc")[0]
        assert policy.pcr4_instance_id(instance) == pcr(name, 4)
    arn = "arn:aws:iam::123456789012:role/enclave"
    assert policy.pcr3_iam_role(arn) == hashlib.sha384(bytes(48) + arn.encode()).digest()
    cert = mini_pki().leaf
    der = cert.public_bytes(Encoding.DER)
    expected = hashlib.sha384(bytes(48) + hashlib.sha384(der).digest()).digest()
    assert policy.pcr8_signing_certificate(der) == expected
    assert policy.pcr8_signing_certificate(cert) == expected


# ---- nonce, module id, age ---------------------------------------------------------------


def test_nonce() -> None:
    nonce = verified(BLOCKY).nonce
    assert nonce is not None
    policy.Nonce(nonce).check(verified(BLOCKY))
    with pytest.raises(PolicyError, match="does not match"):
        policy.Nonce(nonce[:-1] + bytes([nonce[-1] ^ 1])).check(verified(BLOCKY))
    with pytest.raises(PolicyError, match="no nonce"):
        policy.Nonce(b"n").check(verified(EVERVAULT))  # nonce is null there
    for bad in (b"", bytes(1025), "00"):
        with pytest.raises(ValueError):
            policy.Nonce(bad)  # type: ignore[arg-type]


def test_module_id() -> None:
    module_id = verified(BLOCKY).module_id
    policy.ModuleId(module_id).check(verified(BLOCKY))
    with pytest.raises(PolicyError):
        policy.ModuleId(module_id).check(verified(DEBUG))
    with pytest.raises(ValueError):
        policy.ModuleId("")


def test_max_age_validation() -> None:
    for bad in (timedelta(0), timedelta(seconds=-1), 300):
        with pytest.raises(ValueError):
            policy.MaxAge(bad)  # type: ignore[arg-type]
    with pytest.raises(StaleDocumentError):
        pki = mini_pki()
        Verifier(trusted_roots=[pki.root]).verify(
            pki.document(timestamp=T0),
            policy=policy.MaxAge(timedelta(seconds=1)),
            at=T0 + timedelta(seconds=2),
        )


# ---- public key -------------------------------------------------------------------------


def _with_key(der: bytes | None) -> VerifiedAttestation:
    pki = mini_pki()
    fields = genuine_payload()
    fields["public_key"] = der
    doc = pki.document(fields)
    return Verifier(trusted_roots=[pki.root]).verify(doc, policy=policy.RejectDebugMode(), at=T0)


def _spki(key: Any) -> bytes:
    return bytes(key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo))


@cache
def _rsa(bits: int) -> bytes:
    return _spki(rsa.generate_private_key(public_exponent=65537, key_size=bits))


def test_require_public_key_rsa() -> None:
    result = verified(YAWN)  # a genuine RSA-2048 SPKI
    assert isinstance(result.public_key, rsa.RSAPublicKey)
    policy.RequirePublicKey().check(result)
    with pytest.raises(PolicyError, match="fewer than 3072"):
        policy.RequirePublicKey(rsa_min_bits=3072).check(result)
    policy.RequirePublicKey(rsa_min_bits=3072).check(_with_key(_rsa(3072)))
    with pytest.raises(PolicyError, match="1024 bits"):
        policy.RequirePublicKey().check(_with_key(_rsa(1024)))
    with pytest.raises(ValueError):
        policy.RequirePublicKey(rsa_min_bits=1024)


def test_require_public_key_rejects_non_spki() -> None:
    with pytest.raises(PolicyError, match="not a DER"):
        policy.RequirePublicKey().check(verified(EVERVAULT))  # "my super secret key"
    with pytest.raises(PolicyError, match="not a DER"):
        policy.RequirePublicKey().check(verified(BLOCKY))  # 1024 opaque bytes
    with pytest.raises(PolicyError, match="not a DER"):
        policy.RequirePublicKey().check(verified("hf-nitrite_test.cose"))  # 0 bytes
    with pytest.raises(PolicyError, match="no public_key"):
        policy.RequirePublicKey().check(_with_key(None))
    with pytest.raises(PolicyError, match="not a DER"):
        policy.RequirePublicKey().check(_with_key(_rsa(2048) + b"\x00"))  # trailing byte
    pkcs1 = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(Encoding.DER, PublicFormat.PKCS1)
    )
    with pytest.raises(PolicyError, match="not a DER"):
        policy.RequirePublicKey().check(_with_key(pkcs1))


def test_require_public_key_ec() -> None:
    p256 = _with_key(_spki(ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(PolicyError, match="not allowed"):
        policy.RequirePublicKey().check(p256)
    policy.RequirePublicKey(allow_ec=True).check(p256)
    k1 = _with_key(_spki(ec.generate_private_key(ec.SECP256K1())))
    with pytest.raises(PolicyError, match="secp256k1"):
        policy.RequirePublicKey(allow_ec=True).check(k1)


# ---- combinators and UnsafeNoOp --------------------------------------------------------


def test_all_of_and_any_of() -> None:
    right = policy.PCR(0, pcr(BLOCKY, 0))
    wrong = policy.PCR(0, pcr(YAWN, 0))
    policy.AllOf([right, policy.RejectDebugMode()]).check(verified(BLOCKY))
    with pytest.raises(MeasurementMismatchError):
        policy.AllOf([right, wrong]).check(verified(BLOCKY))
    rollout = policy.AnyOf([wrong, right])
    rollout.check(verified(BLOCKY))
    rollout.check(verified(YAWN))
    with pytest.raises(PolicyError, match="no alternative") as info:
        rollout.check(verified(DEBUG))
    assert "PCR0" in str(info.value)
    for combinator in (policy.AllOf, policy.AnyOf):
        with pytest.raises(ValueError, match="at least one"):
            combinator([])
        with pytest.raises(ValueError):
            combinator(["not a policy"])  # type: ignore[list-item]


def test_unsafe_noop_warns_every_time() -> None:
    noop = policy.UnsafeNoOp()
    for _ in range(2):
        with pytest.warns(policy.UnsafePolicyWarning):
            noop.check(verified(BLOCKY))
    assert issubclass(policy.UnsafePolicyWarning, UserWarning)
    with pytest.warns(policy.UnsafePolicyWarning):
        Verifier().verify(raw(BLOCKY), policy=noop, at="document")


def test_policy_is_required() -> None:
    with pytest.raises(TypeError):
        Verifier().verify(raw(BLOCKY), at="document")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Verifier().verify(raw(BLOCKY), policy=None, at="document")  # type: ignore[arg-type]


# ---- JSON --------------------------------------------------------------------------------

EVERY_POLICY = [
    policy.PCR(0, bytes(range(48))),
    policy.PCRs({0: bytes(48), 8: "AB" * 48}),
    policy.ImageMeasurement(pcr0="01" * 48),
    policy.ImageMeasurement(pcr0="01" * 48, pcr1="02" * 48, pcr2="03" * 48),
    policy.RejectDebugMode(),
    policy.Nonce(b"\x00\x01nonce"),
    policy.ModuleId("i-0123456789abcdef0-enc0123456789abcdef"),
    policy.MaxAge(timedelta(minutes=5, microseconds=500)),
    policy.RequirePublicKey(rsa_min_bits=3072, allow_ec=True),
    policy.UnsafeNoOp(),
    policy.AllOf([policy.RejectDebugMode(), policy.AnyOf([policy.PCR(1, bytes(48))])]),
]


@pytest.mark.parametrize("p", EVERY_POLICY, ids=lambda p: type(p).__name__)
def test_json_round_trip(p: policy.Policy) -> None:
    data = json.loads(json.dumps(policy.to_json(p)))
    again = policy.from_json(data)
    assert again == p
    assert policy.to_json(again) == data


def test_unsafe_noop_round_trips_and_still_warns() -> None:
    again = policy.from_json(policy.to_json(policy.UnsafeNoOp()))
    with pytest.warns(policy.UnsafePolicyWarning):
        again.check(verified(BLOCKY))


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.integers(0, 31), st.binary(min_size=48, max_size=48), min_size=1))
def test_json_round_trip_property(values: dict[int, bytes]) -> None:
    p = policy.AnyOf([policy.PCRs(values), policy.AllOf([policy.PCRs(values)])])
    assert policy.from_json(json.loads(json.dumps(policy.to_json(p)))) == p


@pytest.mark.parametrize(
    "data",
    [
        {"type": "Nope"},
        {"kind": "PCR"},
        [],
        {"type": "PCR", "index": 0},
        {"type": "PCR", "index": 0, "value": "00" * 48, "extra": 1},
        {"type": "PCR", "index": 0, "value": "xyz"},
        {"type": "PCRs", "values": {"a": "00" * 48}},
        {"type": "AnyOf", "policies": []},
        {"type": "AllOf", "policies": {"type": "RejectDebugMode"}},
        {"type": "MaxAge", "seconds": "300"},
        {"type": "Nonce", "expected": "zz"},
        {"type": "RequirePublicKey", "rsa_min_bits": 512},
    ],
)
def test_from_json_rejects(data: Any) -> None:
    with pytest.raises(ValueError):
        policy.from_json(data)


def test_to_json_refuses_foreign_policies() -> None:
    class Mine:
        def check(self, result: VerifiedAttestation) -> None:
            pass

    with pytest.raises(ValueError):
        policy.to_json(Mine())
    with pytest.raises(ValueError):
        policy.to_json(policy.AllOf([Mine()]))
