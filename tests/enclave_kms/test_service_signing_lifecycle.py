"""Sign, Verify, GenerateMac and VerifyMac beyond the cryptography: key states, DryRun, key
policies and their condition keys, metadata, CreateKey rules, rotation, audit and caching."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from signing_support import (
    ECC_ALGORITHMS,
    HMAC_SPECS,
    MESSAGE,
    RSA_ALGORITHMS,
    all_four,
    app,
    digest,
    policy,
    sign,
    verify,
)
from test_service_support import (
    ACCOUNT,
    APP_CALLER,
    ROOT_CALLER,
    PinnedClock,
    make_service,
    new_key,
)
from test_service_support import clock as clock
from test_service_support import db_path as db_path
from test_service_support import service as service

from enclave_kms.errors import (
    AccessDeniedException,
    DisabledException,
    DryRunOperationException,
    InvalidKeyUsageException,
    KmsError,
    KMSInvalidMacException,
    KMSInvalidSignatureException,
    KMSInvalidStateException,
    UnsupportedOperationException,
    ValidationException,
)
from enclave_kms.model import (
    CreateAliasRequest,
    CreateKeyRequest,
    DescribeKeyRequest,
    DisableKeyRequest,
    EnableKeyRotationRequest,
    GenerateMacRequest,
    GetPublicKeyRequest,
    RotateKeyOnDemandRequest,
    ScheduleKeyDeletionRequest,
    SignRequest,
    VerifyMacRequest,
    VerifyRequest,
)
from enclave_kms.service import KmsService


def test_disabled_and_pending_deletion_keys_refuse(service: KmsService) -> None:
    signer = new_key(service, key_spec="ECC_NIST_P256", key_usage="SIGN_VERIFY")
    mac_key = new_key(service, key_spec="HMAC_256", key_usage="GENERATE_VERIFY_MAC")
    for kid in (signer, mac_key):
        service.disable_key(ROOT_CALLER, DisableKeyRequest(key_id=kid))
    for call in all_four(service, signer, mac_key):
        with pytest.raises(DisabledException):
            call()
    for kid in (signer, mac_key):
        service.schedule_key_deletion(
            ROOT_CALLER, ScheduleKeyDeletionRequest(key_id=kid, pending_window_in_days=7)
        )
    for call in all_four(service, signer, mac_key):
        with pytest.raises(KMSInvalidStateException):
            call()


def test_dry_run_checks_everything_and_does_nothing(service: KmsService) -> None:
    signer = new_key(service, key_spec="ECC_NIST_P256", key_usage="SIGN_VERIFY")
    mac_key = new_key(service, key_spec="HMAC_256", key_usage="GENERATE_VERIFY_MAC")
    calls = all_four(service, signer, mac_key, dry_run=True)
    for call in calls:
        # Verify/VerifyMac are given a bad signature/MAC: a dry run does not get that far.
        with pytest.raises(DryRunOperationException):
            call()
    records = service.query_audit(limit=100)
    dry = [r for r in records if r.dry_run]
    assert [r.operation for r in dry] == ["Sign", "Verify", "GenerateMac", "VerifyMac"]
    assert all(r.outcome == "DryRunOperationException" for r in dry)
    # A dry run still checks the key's usage first.
    with pytest.raises(InvalidKeyUsageException):
        service.sign(
            ROOT_CALLER,
            SignRequest(
                key_id=mac_key, message=MESSAGE, signing_algorithm="ECDSA_SHA_256", dry_run=True
            ),
        )


def test_key_policy_allows_verify_but_not_sign(service: KmsService) -> None:
    kid = new_key(
        service,
        key_spec="ECC_NIST_P256",
        key_usage="SIGN_VERIFY",
        policy=policy(app("kms:Verify")),
    )
    signature = sign(service, kid, "ECDSA_SHA_256", MESSAGE)
    with pytest.raises(AccessDeniedException):
        service.sign(
            APP_CALLER, SignRequest(key_id=kid, message=MESSAGE, signing_algorithm="ECDSA_SHA_256")
        )
    ok = service.verify(
        APP_CALLER,
        VerifyRequest(
            key_id=kid, message=MESSAGE, signature=signature, signing_algorithm="ECDSA_SHA_256"
        ),
    )
    assert ok.signature_valid is True
    denied = [r for r in service.query_audit(limit=100) if r.outcome == "AccessDeniedException"]
    assert [r.operation for r in denied] == ["Sign"]
    assert denied[0].principal_arn == APP_CALLER.principal_arn


def test_condition_keys_signing_algorithm_message_type_and_mac_algorithm(
    service: KmsService,
) -> None:
    rsa_kid = new_key(
        service,
        key_spec="RSA_2048",
        key_usage="SIGN_VERIFY",
        policy=policy(
            app(
                "kms:Sign",
                {
                    "StringEquals": {
                        "kms:SigningAlgorithm": "RSASSA_PSS_SHA_256",
                        "kms:MessageType": "DIGEST",
                    }
                },
            )
        ),
    )
    d = digest("RSASSA_PSS_SHA_256", MESSAGE)

    def app_sign(algorithm: str, message: bytes, message_type: str | None) -> object:
        return service.sign(
            APP_CALLER,
            SignRequest(
                key_id=rsa_kid,
                message=message,
                message_type=message_type,
                signing_algorithm=algorithm,
            ),
        )

    app_sign("RSASSA_PSS_SHA_256", d, "DIGEST")
    with pytest.raises(AccessDeniedException):
        app_sign("RSASSA_PKCS1_V1_5_SHA_256", d, "DIGEST")
    with pytest.raises(AccessDeniedException):  # no MessageType is RAW
        app_sign("RSASSA_PSS_SHA_256", MESSAGE, None)
    mac_kid = new_key(
        service,
        key_spec="HMAC_512",
        key_usage="GENERATE_VERIFY_MAC",
        policy=policy(
            app(["kms:GenerateMac"], {"StringEquals": {"kms:MacAlgorithm": "HMAC_SHA_512"}}),
            app(["kms:VerifyMac"], {"StringEquals": {"kms:MacAlgorithm": "HMAC_SHA_256"}}),
        ),
    )
    mac = service.generate_mac(
        APP_CALLER, GenerateMacRequest(key_id=mac_kid, message=b"m", mac_algorithm="HMAC_SHA_512")
    ).mac
    # The only algorithm the key offers is HMAC_SHA_512, which the VerifyMac statement
    # does not name: the policy decides (HMAC_SHA_256 would fail the usage check first).
    with pytest.raises(AccessDeniedException):
        service.verify_mac(
            APP_CALLER,
            VerifyMacRequest(key_id=mac_kid, message=b"m", mac=mac, mac_algorithm="HMAC_SHA_512"),
        )


def test_describe_key_and_get_public_key_metadata(service: KmsService) -> None:
    expected_signing = {
        "RSA_2048": RSA_ALGORITHMS,
        **{spec: (alg,) for spec, (alg, _) in ECC_ALGORITHMS.items()},
    }
    for spec, algorithms in expected_signing.items():
        kid = new_key(service, key_spec=spec, key_usage="SIGN_VERIFY")
        meta = service.describe_key(ROOT_CALLER, DescribeKeyRequest(key_id=kid)).key_metadata
        assert meta is not None
        assert (meta.key_usage, meta.key_spec, meta.customer_master_key_spec) == (
            "SIGN_VERIFY", spec, spec,
        )  # fmt: skip
        assert meta.signing_algorithms == algorithms
        assert (meta.encryption_algorithms, meta.mac_algorithms) == (None, None)
        assert meta.key_agreement_algorithms is None
        pub = service.get_public_key(ROOT_CALLER, GetPublicKeyRequest(key_id=kid))
        assert (pub.key_usage, pub.key_spec, pub.signing_algorithms) == (
            "SIGN_VERIFY", spec, algorithms,
        )  # fmt: skip
        assert pub.encryption_algorithms is None and pub.key_agreement_algorithms is None
    for spec, (algorithm, _, _) in HMAC_SPECS.items():
        kid = new_key(service, key_spec=spec, key_usage="GENERATE_VERIFY_MAC")
        meta = service.describe_key(ROOT_CALLER, DescribeKeyRequest(key_id=kid)).key_metadata
        assert meta is not None
        assert (meta.key_usage, meta.key_spec, meta.mac_algorithms) == (
            "GENERATE_VERIFY_MAC", spec, (algorithm,),
        )  # fmt: skip
        assert (meta.encryption_algorithms, meta.signing_algorithms) == (None, None)
        with pytest.raises(UnsupportedOperationException, match=f"{spec} has no public key"):
            service.get_public_key(ROOT_CALLER, GetPublicKeyRequest(key_id=kid))
    # The other usages keep their lists and gain none.
    rsa_enc = new_key(service, key_spec="RSA_2048", key_usage="ENCRYPT_DECRYPT")
    meta = service.describe_key(ROOT_CALLER, DescribeKeyRequest(key_id=rsa_enc)).key_metadata
    assert meta is not None
    assert meta.encryption_algorithms == ("RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256")
    assert (meta.signing_algorithms, meta.mac_algorithms) == (None, None)


@pytest.mark.parametrize(
    ("spec", "usage", "error", "text"),
    [
        ("HMAC_256", "ENCRYPT_DECRYPT", ValidationException, "not compatible"),
        ("HMAC_256", None, ValidationException, "not compatible"),  # the default usage
        ("HMAC_384", "SIGN_VERIFY", ValidationException, "not compatible"),
        ("ECC_SECG_P256K1", "KEY_AGREEMENT", ValidationException, "not compatible"),
        ("RSA_2048", "GENERATE_VERIFY_MAC", ValidationException, "not compatible"),
        ("SYMMETRIC_DEFAULT", "GENERATE_VERIFY_MAC", ValidationException, "not compatible"),
        ("ECC_NIST_P256", "ENCRYPT_DECRYPT", ValidationException, "not compatible"),
        ("ML_DSA_44", "SIGN_VERIFY", UnsupportedOperationException, "ML_DSA_44"),
        ("ECC_NIST_EDWARDS25519", "SIGN_VERIFY", UnsupportedOperationException, "EDWARDS"),
    ],
)
def test_create_key_refuses_impossible_or_unimplemented_pairs(
    service: KmsService, spec: str, usage: str | None, error: type[KmsError], text: str
) -> None:
    with pytest.raises(error, match=text):
        service.create_key(ROOT_CALLER, CreateKeyRequest(key_spec=spec, key_usage=usage))


def test_signing_and_hmac_keys_do_not_rotate(service: KmsService) -> None:
    for kid in (
        new_key(service, key_spec="ECC_SECG_P256K1", key_usage="SIGN_VERIFY"),
        new_key(service, key_spec="HMAC_224", key_usage="GENERATE_VERIFY_MAC"),
    ):
        with pytest.raises(UnsupportedOperationException, match="does not support rotation"):
            service.enable_key_rotation(ROOT_CALLER, EnableKeyRotationRequest(key_id=kid))
        with pytest.raises(UnsupportedOperationException, match="does not support rotation"):
            service.rotate_key_on_demand(ROOT_CALLER, RotateKeyOnDemandRequest(key_id=kid))


def test_audit_records_name_the_key_and_never_the_message(service: KmsService) -> None:
    secret = b"audit-must-not-see-this-" + os.urandom(8).hex().encode()
    signer = new_key(service, key_spec="ECC_NIST_P256", key_usage="SIGN_VERIFY")
    mac_key = new_key(service, key_spec="HMAC_256", key_usage="GENERATE_VERIFY_MAC")
    service.create_alias(
        ROOT_CALLER, CreateAliasRequest(alias_name="alias/signer", target_key_id=signer)
    )
    signed = service.sign(
        ROOT_CALLER,
        SignRequest(key_id="alias/signer", message=secret, signing_algorithm="ECDSA_SHA_256"),
    )
    assert (
        signed.key_id == f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/{signer}"
    )  # the key, not the alias
    signature = signed.signature or b""
    verify(service, signer, "ECDSA_SHA_256", secret, signature)
    mac = service.generate_mac(
        ROOT_CALLER,
        GenerateMacRequest(key_id=mac_key, message=secret, mac_algorithm="HMAC_SHA_256"),
    ).mac
    assert mac is not None
    with pytest.raises(KMSInvalidSignatureException) as bad_sig:
        verify(service, signer, "ECDSA_SHA_256", secret + b"x", signature)
    with pytest.raises(KMSInvalidMacException) as bad_mac:
        service.verify_mac(
            ROOT_CALLER,
            VerifyMacRequest(
                key_id=mac_key, message=secret, mac=mac[::-1], mac_algorithm="HMAC_SHA_256"
            ),
        )
    records = [
        r for r in service.query_audit(limit=100)
        if r.operation in {"Sign", "Verify", "GenerateMac", "VerifyMac"}
    ]  # fmt: skip
    assert [(r.operation, r.outcome) for r in records] == [
        ("Sign", "success"),
        ("Verify", "success"),
        ("GenerateMac", "success"),
        ("Verify", "KMSInvalidSignatureException"),
        ("VerifyMac", "KMSInvalidMacException"),
    ]
    arn = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/"
    assert [r.key_arn for r in records] == [
        arn + signer, arn + signer, arn + mac_key, arn + signer, arn + mac_key,
    ]  # fmt: skip
    text = repr(records) + bad_sig.value.message + bad_mac.value.message
    for hidden in (secret, signature, mac):
        assert hidden.hex() not in text and repr(hidden)[2:-1] not in text
    assert "audit-must-not-see-this" not in text


def test_a_replica_with_a_warm_cache_honours_a_disable_at_once(
    db_path: Path | str, clock: PinnedClock
) -> None:
    # Sign decides on a cached key record; the audit write checks it is still the committed
    # one, so replica B refuses at once after replica A disables the key.
    a = make_service(db_path, clock)
    b = make_service(db_path, clock, cache_poll_interval=3600)
    try:
        signer = new_key(a, key_spec="ECC_NIST_P256", key_usage="SIGN_VERIFY")
        mac_key = new_key(a, key_spec="HMAC_256", key_usage="GENERATE_VERIFY_MAC")
        sign(b, signer, "ECDSA_SHA_256", MESSAGE)  # warms B's cache
        b.generate_mac(
            ROOT_CALLER,
            GenerateMacRequest(key_id=mac_key, message=b"m", mac_algorithm="HMAC_SHA_256"),
        )
        a.disable_key(ROOT_CALLER, DisableKeyRequest(key_id=signer))
        a.disable_key(ROOT_CALLER, DisableKeyRequest(key_id=mac_key))
        with pytest.raises(DisabledException):
            sign(b, signer, "ECDSA_SHA_256", MESSAGE)
        with pytest.raises(DisabledException):
            b.generate_mac(
                ROOT_CALLER,
                GenerateMacRequest(key_id=mac_key, message=b"m", mac_algorithm="HMAC_SHA_256"),
            )
        outcomes = [
            (r.operation, r.outcome) for r in b.query_audit(limit=100)
            if r.operation in {"Sign", "GenerateMac"}
        ]  # fmt: skip
        # One record per call: the discarded first attempt left none.
        assert outcomes == [
            ("Sign", "success"),
            ("GenerateMac", "success"),
            ("Sign", "DisabledException"),
            ("GenerateMac", "DisabledException"),
        ]
    finally:
        a.close()
        b.close()
