"""Fuzz target for the attestation verifier: ``Verifier.verify`` and ``parse_document``.

The mutator decodes the COSE_Sign1 and its payload, changes the structure, re-encodes (with
non-minimal heads and indefinite lengths now and then) and, most of the time, re-signs the result
with a test-PKI leaf key that the verifier trusts. Without re-signing nearly every mutant would
stop at the signature; with it, mutated payloads reach the chain check, the signature check,
the freshness check and every policy.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import cbor2
from _mutators import CborTag, DupMap, encode_cbor, encode_tlv, mutate_tlv, parse_tlv
from _mutators import random_cbor_value as rnd
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from attestation import (
    AttestationError,
    MalformedDocumentError,
    VerifiedAttestation,
    Verifier,
    aws_nitro_root,
    parse_document,
    policy,
)
from attestation.document import MAX_DOCUMENT_SIZE, PCR_LENGTHS
from attestation.errors import PolicyError, StaleDocumentError
from attestation.testing._document import PROTECTED_ES384, sign_es384
from attestation.testing.mint import LEAF_LIFETIME
from attestation.testing.pki import TestPki

__all__ = ["DOC_TIME", "fuzz_leaf", "fuzz_pki", "mutate_attestation", "run_attestation"]

#: The fuzz PKI's CAs start at PKI_START; seeds are dated DOC_TIME, inside the 3-hour leaf.
PKI_START = datetime(2024, 1, 1, tzinfo=UTC)
DOC_TIME = datetime(2024, 1, 1, 12, tzinfo=UTC)  # inside the 24-hour instance CA
NONCE = b"fuzz-nonce-0123456789abcdef"


@cache
def fuzz_pki() -> TestPki:
    """A test PKI (DO NOT TRUST) fixed by its seed, so corpus files stay valid across runs."""
    return TestPki.create(b"enclave-kms fuzz", valid_from=PKI_START)


@cache
def fuzz_leaf() -> tuple[bytes, ec.EllipticCurvePrivateKey]:
    """The leaf certificate DER and key that the mutator re-signs with."""
    pki = fuzz_pki()
    # The same leaf that mint_document(pki, timestamp=DOC_TIME) issues, so minted seeds re-sign.
    not_before = DOC_TIME - timedelta(seconds=10)
    cert, key = pki.issue_leaf(
        pki.default_module_id, not_before=not_before, not_after=not_before + LEAF_LIFETIME
    )
    return cert.public_bytes(Encoding.DER), key


@cache
def _verifier() -> Verifier:
    return Verifier(trusted_roots=[aws_nitro_root(), fuzz_pki().root])


class _EveryPolicy:
    """Runs each policy on every authentic document, so all of them see fuzzed fields.

    The policies contradict each other (debug mode both rejected and required), so only the one
    at ``deciding`` may fail the verification; ``deciding == len(policies)`` lets every authentic
    document through, so the success path and its invariants are reached too.
    """

    def __init__(self) -> None:
        self.deciding = 0
        self.policies: tuple[Any, ...] = (
            policy.RejectDebugMode(),
            policy.RequirePublicKey(allow_ec=True),
            policy.Nonce(NONCE),
            policy.MaxAge(timedelta(minutes=5)),
            policy.PCRs({0: bytes(48), 3: bytes(48)}),
            policy.ModuleId(fuzz_pki().default_module_id),
            policy.AnyOf([policy.RejectDebugMode(), policy.Nonce(NONCE)]),
        )

    def check(self, result: VerifiedAttestation) -> None:
        for i, p in enumerate(self.policies):
            try:
                p.check(result)
            except (PolicyError, StaleDocumentError):
                if i == self.deciding:
                    raise


@cache
def _policy() -> _EveryPolicy:
    return _EveryPolicy()


def run_attestation(data: bytes) -> None:
    """Oracle: only AttestationError may escape; parse and verify must agree on malformedness."""
    every = _policy()
    try:
        parsed = parse_document(data)
    except MalformedDocumentError:
        parsed = None
    # Audit mode for half the inputs (reaches the signature on expired genuine documents);
    # a fixed instant for the rest (exercises expiry and future-dating).
    at: Any = "document" if len(data) % 2 == 0 else DOC_TIME + timedelta(minutes=1)
    every.deciding = len(data) % (len(every.policies) + 1)  # a function of the input: replayable
    try:
        result = _verifier().verify(data, policy=every, at=at)
    except MalformedDocumentError as exc:
        # verify decodes exactly as parse_document does; past that, only the certificates'
        # DER (parsed by the chain check, not by parse_document) may still be malformed.
        late = (exc.field or "").startswith(("payload.certificate", "payload.cabundle"))
        assert parsed is None or late, f"verify refused what parse_document accepted: {exc}"
        return
    except AttestationError:
        assert parsed is not None, "verify got past decoding a document parse_document refused"
        return
    assert parsed is not None
    assert result.document == parsed
    assert len(data) <= MAX_DOCUMENT_SIZE
    assert all(len(v) == PCR_LENGTHS[result.digest] for v in result.pcrs.values())
    assert result.chain[-1] in _verifier().trusted_roots


def _public_keys() -> tuple[bytes, ...]:
    def spki(key: Any) -> bytes:
        return bytes(key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo))

    rsa2048 = rsa.generate_private_key(65537, 2048).public_key()
    return (
        spki(rsa2048),
        spki(rsa2048) + b"\x00",  # trailing byte after one SPKI
        rsa2048.public_bytes(Encoding.DER, PublicFormat.PKCS1),
        # Too small for RequirePublicKey: the policy must refuse it.
        spki(rsa.generate_private_key(65537, 1024).public_key()),  # noqa: S505
        spki(ec.generate_private_key(ec.SECP256R1()).public_key()),
        spki(ec.generate_private_key(ec.SECP256K1()).public_key()),
        spki(ed25519.Ed25519PrivateKey.generate().public_key()),
    )


_TIMESTAMPS = (0, -1, 1, 2**63, 2**64 - 1, 253402300799999, 253402300800000, True, 1.5, "1")


def _mutate_fields(fields: list[list[Any]], rng: random.Random, raw: Callable[..., bytes]) -> None:
    leaf, _ = fuzz_leaf()
    i = rng.randrange(len(fields)) if fields else 0
    op = rng.randrange(14)
    if not fields or op == 0:
        fields.append([rng.choice(["extra", 1, b"k", "nonce", "pcrs"]), rnd(rng)])
        return
    key, value = fields[i]
    if op == 1:
        fields[i][1] = rnd(rng)
    elif op == 2:
        del fields[i]
    elif op == 3:
        fields.append([key, value])  # duplicate key
    elif op == 4:
        fields[i][1] = None
    elif op == 5:
        rng.shuffle(fields)
    for f in fields:
        k, v = f
        if k == "pcrs" and op == 6 and isinstance(v, dict):
            v = dict(v)
            idx = rng.choice([0, 1, 2, 3, 15, 31, 32, -1, "0", True, b"\x00"])
            v[idx] = rng.choice([bytes(48), bytes(32), bytes(64), b"\x01" * 48, None, 0])
            if rng.random() < 0.2:
                v = {j: bytes(48) for j in range(rng.choice([0, 33]))}
            f[1] = v
        elif k == "timestamp" and op == 7:
            stamp = int(DOC_TIME.timestamp() * 1000)
            f[1] = rng.choice((*_TIMESTAMPS, stamp + rng.choice([-11_000, 3 * 3600_000, 61_000])))
        elif k == "digest" and op == 8:
            f[1] = rng.choice(["SHA256", "SHA512", "sha384", "SHA384\x00", ""])
        elif k == "cabundle" and op == 9 and isinstance(v, list):
            f[1] = _mutate_bundle(list(v), rng, leaf)
        elif k == "certificate" and op == 10 and isinstance(v, bytes):
            f[1] = _mutate_der(v, rng, raw)
        elif k == "public_key" and op == 11:
            f[1] = rng.choice(_public_keys())
        elif k in ("user_data", "nonce") and op == 12:
            f[1] = rng.choice([NONCE, b"", bytes(1024), bytes(1025), NONCE[:-1]])
        elif k == "module_id" and op == 13:
            f[1] = rng.choice(["", fuzz_pki().default_module_id, "x" * 4096, 7, b"i-0"])


def _mutate_bundle(bundle: list[Any], rng: random.Random, leaf: bytes) -> list[Any]:
    op = rng.randrange(6)
    if op == 0:
        rng.shuffle(bundle)
    elif op == 1 and bundle:
        del bundle[rng.randrange(len(bundle))]
    elif op == 2 and bundle:
        bundle.append(rng.choice(bundle))
    elif op == 3:
        bundle.append(leaf)
    elif op == 4:
        bundle = []
    elif bundle:
        j = rng.randrange(len(bundle))
        if isinstance(bundle[j], bytes):
            bundle[j] = _mutate_der(bundle[j], rng, lambda d: d[:-1])
    return bundle


def _mutate_der(der: bytes, rng: random.Random, raw: Callable[[bytes], bytes]) -> bytes:
    """ASN.1-aware change to a certificate (so cryptography's DER parser sees near misses)."""
    if rng.random() < 0.3:
        return raw(der)
    try:
        nodes = parse_tlv(der)
    except ValueError:
        return raw(der)
    for _ in range(rng.randint(1, 3)):
        mutate_tlv(nodes, rng)
    return encode_tlv(nodes)


_PROTECTED = (
    PROTECTED_ES384,
    b"\xa1\x01\x26",  # ES256
    b"\xa1\x01\x39\x00\x22",  # -35 with a non-minimal head
    b"\xa2\x01\x38\x22\x04\x40",  # extra kid
    b"\xa1\x01\xf5",
    b"\xa1\x01\x65ES384",
    b"\xa0",
    b"",
    b"\x40",
    b"\xa2\x01\x38\x22\x01\x38\x22",  # duplicate alg
)


def _mutate_envelope(arr: list[Any], rng: random.Random) -> list[Any]:
    op = rng.randrange(6)
    if op == 0:
        arr[0] = rng.choice(_PROTECTED)
    elif op == 1:
        arr[1] = rng.choice([{}, {1: -35}, None, {4: b"kid"}, [], {1: -7}])
    elif op == 2:
        arr[3] = rng.choice([bytes(96), b"\x01" * 95, b"\x01" * 97, b"", bytes(48) + b"\x01" * 48])
    elif op == 3:
        arr = arr[: rng.choice([0, 1, 3])] if rng.random() < 0.5 else [*arr, b""]
    elif op == 4:
        arr[0] = rng.choice([{1: -35}, "protected", None])
    else:
        arr[2] = rng.choice([None, "payload", b"", b"\xa0", encode_cbor(rnd(rng))])
    return arr


def mutate_attestation(data: bytes, rng: random.Random, raw: Callable[[bytes], bytes]) -> bytes:
    """Structure-aware mutation of a COSE_Sign1 attestation document (see module docstring)."""
    if rng.random() < 0.1:
        return raw(data)
    try:
        item = cbor2.loads(data)
    except Exception:
        return raw(data)
    tagged = isinstance(item, cbor2.CBORTag)
    arr = item.value if tagged else item
    if not isinstance(arr, list | tuple) or len(arr) != 4 or not isinstance(arr[2], bytes):
        return raw(data)
    arr = list(arr)
    leaf, key = fuzz_leaf()
    try:
        payload = cbor2.loads(arr[2])
        fields = [[k, v] for k, v in payload.items()] if isinstance(payload, dict) else None
    except Exception:
        fields = None
    if fields is not None:
        if rng.random() < 0.4:  # adopt: take the document over with the fuzz PKI
            for f in fields:
                if f[0] == "certificate":
                    f[1] = leaf
                elif f[0] == "cabundle":
                    f[1] = fuzz_pki().cabundle
                elif f[0] == "timestamp":
                    f[1] = int(DOC_TIME.timestamp() * 1000) + rng.randrange(3600_000)
        for _ in range(rng.choice([0, 0, 1, 1, 1, 2, 3])):
            _mutate_fields(fields, rng, raw)
        weird = 0.02 if rng.random() < 0.2 else 0.0  # odd encodings, but not on every mutant
        arr[2] = encode_cbor(DupMap([(k, v) for k, v in fields]), rng, weird=weird)
    if rng.random() < 0.15:
        arr = _mutate_envelope(arr, rng)
    ours = fields is not None and any(f[0] == "certificate" and f[1] == leaf for f in fields)
    signable = len(arr) == 4 and isinstance(arr[0], bytes) and isinstance(arr[2], bytes)
    if ours and signable and rng.random() < 0.9:
        arr[3] = sign_es384(key, arr[0], arr[2])
    value: Any = arr
    if (tagged and rng.random() < 0.9) or rng.random() < 0.05:
        value = CborTag(rng.choice([18, 18, 18, 98, 55799]), value)
    out = encode_cbor(value, rng, weird=0.05 if rng.random() < 0.1 else 0.0)
    if rng.random() < 0.03:
        out += rng.choice([b"\xf6", b"\x00", bytes(MAX_DOCUMENT_SIZE)])
    return out
