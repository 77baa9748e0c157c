"""A principal the key policy refuses learns nothing of a key's state.

Every cryptographic operation decides the key policy before the key state: a caller the policy
does not admit gets AccessDeniedException whether the key is Enabled, Disabled or
PendingDeletion, and only an admitted caller is told DisabledException or
KMSInvalidStateException (as the management operations already did).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from test_service_support import ROOT_CALLER, STRANGER, new_key
from test_service_support import clock as clock
from test_service_support import db_path as db_path
from test_service_support import service as service

from enclave_kms.errors import (
    AccessDeniedException,
    DisabledException,
    KmsError,
    KMSInvalidStateException,
)
from enclave_kms.model import (
    Caller,
    DecryptRequest,
    DeriveSharedSecretRequest,
    DisableKeyRequest,
    EncryptRequest,
    GenerateDataKeyPairRequest,
    GenerateDataKeyPairWithoutPlaintextRequest,
    GenerateDataKeyRequest,
    GenerateDataKeyWithoutPlaintextRequest,
    GenerateMacRequest,
    ReEncryptRequest,
    ScheduleKeyDeletionRequest,
    SignRequest,
    VerifyMacRequest,
    VerifyRequest,
)
from enclave_kms.service import KmsService

Call = Callable[[KmsService, Caller, dict[str, str]], object]


def _peer_spki() -> bytes:
    return (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


# Each operation with the key it needs, named by the ids made in _keys().
OPERATIONS: dict[str, Call] = {
    "GenerateDataKey": lambda s, c, k: s.generate_data_key(
        c, GenerateDataKeyRequest(key_id=k["sym"], key_spec="AES_256")
    ),
    "GenerateDataKeyWithoutPlaintext": lambda s, c, k: s.generate_data_key_without_plaintext(
        c, GenerateDataKeyWithoutPlaintextRequest(key_id=k["sym"], number_of_bytes=16)
    ),
    "GenerateDataKeyPair": lambda s, c, k: s.generate_data_key_pair(
        c, GenerateDataKeyPairRequest(key_id=k["sym"], key_pair_spec="ECC_NIST_P256")
    ),
    "GenerateDataKeyPairWithoutPlaintext": lambda s, c, k: (
        s.generate_data_key_pair_without_plaintext(
            c,
            GenerateDataKeyPairWithoutPlaintextRequest(
                key_id=k["sym"], key_pair_spec="ECC_NIST_P256"
            ),
        )
    ),
    "Encrypt": lambda s, c, k: s.encrypt(c, EncryptRequest(key_id=k["sym"], plaintext=b"x")),
    "Decrypt": lambda s, c, k: s.decrypt(
        c, DecryptRequest(ciphertext_blob=bytes.fromhex(k["blob"]))
    ),
    "ReEncrypt (source)": lambda s, c, k: s.re_encrypt(
        c,
        ReEncryptRequest(
            ciphertext_blob=bytes.fromhex(k["blob"]), destination_key_id=k["other_sym"]
        ),
    ),
    "Sign": lambda s, c, k: s.sign(
        c, SignRequest(key_id=k["sign"], message=b"m", signing_algorithm="ECDSA_SHA_256")
    ),
    "Verify": lambda s, c, k: s.verify(
        c,
        VerifyRequest(
            key_id=k["sign"], message=b"m", signature=b"\x30\x00", signing_algorithm="ECDSA_SHA_256"
        ),
    ),
    "GenerateMac": lambda s, c, k: s.generate_mac(
        c, GenerateMacRequest(key_id=k["mac"], message=b"m", mac_algorithm="HMAC_SHA_256")
    ),
    "VerifyMac": lambda s, c, k: s.verify_mac(
        c,
        VerifyMacRequest(
            key_id=k["mac"], message=b"m", mac=b"\x00" * 32, mac_algorithm="HMAC_SHA_256"
        ),
    ),
    "DeriveSharedSecret": lambda s, c, k: s.derive_shared_secret(
        c,
        DeriveSharedSecretRequest(
            key_id=k["agree"], key_agreement_algorithm="ECDH", public_key=_peer_spki()
        ),
    ),
}


def _keys(service: KmsService) -> dict[str, str]:
    sym = new_key(service)
    blob = service.encrypt(ROOT_CALLER, EncryptRequest(key_id=sym, plaintext=b"secret"))
    return {
        "sym": sym,
        "other_sym": new_key(service),
        "blob": (blob.ciphertext_blob or b"").hex(),
        "sign": new_key(service, key_spec="ECC_NIST_P256", key_usage="SIGN_VERIFY"),
        "mac": new_key(service, key_spec="HMAC_256", key_usage="GENERATE_VERIFY_MAC"),
        "agree": new_key(service, key_spec="ECC_NIST_P256", key_usage="KEY_AGREEMENT"),
    }


def _outcome(call: Call, service: KmsService, caller: Caller, keys: dict[str, str]) -> str:
    try:
        call(service, caller, keys)
    except KmsError as exc:
        return exc.aws_type
    return "success"


@pytest.mark.parametrize(
    ("change", "admitted_error"),
    [("disable", DisabledException), ("schedule_deletion", KMSInvalidStateException)],
)
def test_a_refused_principal_gets_access_denied_whatever_the_key_state(
    service: KmsService, change: str, admitted_error: type[KmsError]
) -> None:
    keys = _keys(service)
    # Before the change the stranger is refused by the policy, as after it.
    before = {name: _outcome(call, service, STRANGER, keys) for name, call in OPERATIONS.items()}
    assert set(before.values()) == {AccessDeniedException.aws_type}, before
    for name in ("sym", "sign", "mac", "agree"):
        if change == "disable":
            service.disable_key(ROOT_CALLER, DisableKeyRequest(key_id=keys[name]))
        else:
            service.schedule_key_deletion(
                ROOT_CALLER, ScheduleKeyDeletionRequest(key_id=keys[name], pending_window_in_days=7)
            )
    refused = {name: _outcome(call, service, STRANGER, keys) for name, call in OPERATIONS.items()}
    assert refused == before
    admitted = {
        name: _outcome(call, service, ROOT_CALLER, keys) for name, call in OPERATIONS.items()
    }
    assert set(admitted.values()) == {admitted_error.aws_type}, admitted
    # The audit records what each caller was told: the refusal, then the state.
    records = service.query_audit(limit=1000)
    latest = records[-2 * len(OPERATIONS) :]
    assert [r.outcome for r in latest[: len(OPERATIONS)]] == list(refused.values())
    assert all(r.principal_arn == STRANGER.principal_arn for r in latest[: len(OPERATIONS)])
    assert all(r.deny_reason for r in latest[: len(OPERATIONS)])
    assert [r.outcome for r in latest[len(OPERATIONS) :]] == list(admitted.values())
