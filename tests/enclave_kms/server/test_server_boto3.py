"""boto3 against a real ``enclave-kms serve`` process: every operation, Recipient, policies."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from kms_server_helpers import ACCESS_KEY, ACCOUNT, REGION, SECRET_KEY
from kms_server_process import (
    BOB_KEY,
    BOB_SECRET,
    RunningServer,
    audit_rows,
    kms_client,
    running_server,
)

from attestation.testing.mint import mint_document
from attestation.testing.pki import TestPki
from enclave_kms import model
from enclave_kms.cms import decrypt_ciphertext_for_recipient

pytestmark = pytest.mark.interop

PCR0 = bytes(range(48))


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return TestPki.create(valid_from=datetime.now(UTC) - timedelta(hours=1))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, pki: TestPki) -> Iterator[RunningServer]:
    work = tmp_path_factory.mktemp("kms-boto3")
    root = work / "test-root.pem"
    root.write_bytes(pki.root.public_bytes(serialization.Encoding.PEM))
    with running_server(work, ["--trust-root", str(root)]) as srv:
        yield srv


client = kms_client


@pytest.fixture(scope="module")
def kms(server: RunningServer) -> Any:
    return client(server)


@pytest.fixture(scope="module")
def enclave_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def spki(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def recipient(document: bytes) -> dict[str, Any]:
    return {"KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256", "AttestationDocument": document}


def error_code(info: pytest.ExceptionInfo[ClientError]) -> str:
    return str(info.value.response["Error"]["Code"])


def test_every_operation_the_core_offers_works_through_boto3(kms: Any) -> None:
    called: set[str] = set()
    kms.meta.events.register("after-call.kms", lambda model, **_: called.add(model.name))

    key = kms.create_key(Description="lifecycle", Tags=[{"TagKey": "t", "TagValue": "1"}])
    key_id = key["KeyMetadata"]["KeyId"]
    assert key["KeyMetadata"]["Arn"].startswith(f"arn:aws:kms:{REGION}:{ACCOUNT}:key/")
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    assert key_id in {k["KeyId"] for k in kms.list_keys()["Keys"]}
    kms.update_key_description(KeyId=key_id, Description="renamed")
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["Description"] == "renamed"

    kms.create_alias(AliasName="alias/lifecycle", TargetKeyId=key_id)
    kms.update_alias(AliasName="alias/lifecycle", TargetKeyId=key_id)
    assert "alias/lifecycle" in {a["AliasName"] for a in kms.list_aliases()["Aliases"]}

    ctx = {"purpose": "test"}
    enc = kms.encrypt(KeyId="alias/lifecycle", Plaintext=b"hello", EncryptionContext=ctx)
    assert kms.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext=ctx)[
        "Plaintext"] == b"hello"  # fmt: skip
    key2 = kms.create_key()["KeyMetadata"]["KeyId"]
    re = kms.re_encrypt(
        CiphertextBlob=enc["CiphertextBlob"], SourceEncryptionContext=ctx, DestinationKeyId=key2
    )
    assert kms.decrypt(CiphertextBlob=re["CiphertextBlob"])["Plaintext"] == b"hello"

    dk = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    assert len(dk["Plaintext"]) == 32
    assert kms.decrypt(CiphertextBlob=dk["CiphertextBlob"])["Plaintext"] == dk["Plaintext"]
    dk2 = kms.generate_data_key_without_plaintext(KeyId=key_id, NumberOfBytes=16)
    assert "Plaintext" not in dk2
    assert len(kms.decrypt(CiphertextBlob=dk2["CiphertextBlob"])["Plaintext"]) == 16
    assert len(kms.generate_random(NumberOfBytes=24)["Plaintext"]) == 24

    pair = kms.generate_data_key_pair(KeyId=key_id, KeyPairSpec="ECC_NIST_P256")
    private = serialization.load_der_private_key(pair["PrivateKeyPlaintext"], None)
    assert (
        private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        == pair["PublicKey"]
    )
    pair2 = kms.generate_data_key_pair_without_plaintext(KeyId=key_id, KeyPairSpec="RSA_2048")
    assert "PrivateKeyPlaintext" not in pair2

    rsa_key = kms.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
    pub = serialization.load_der_public_key(kms.get_public_key(KeyId=rsa_key["KeyId"])[
        "PublicKey"])  # fmt: skip
    assert isinstance(pub, rsa.RSAPublicKey)
    ct = pub.encrypt(b"to kms", padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None))
    assert (
        kms.decrypt(
            KeyId=rsa_key["KeyId"], CiphertextBlob=ct, EncryptionAlgorithm="RSAES_OAEP_SHA_256"
        )["Plaintext"]
        == b"to kms"
    )

    ecdh = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="KEY_AGREEMENT")["KeyMetadata"]
    peer = ec.generate_private_key(ec.SECP256R1())
    shared = kms.derive_shared_secret(
        KeyId=ecdh["KeyId"], KeyAgreementAlgorithm="ECDH",
        PublicKey=peer.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
    )  # fmt: skip
    kms_pub = serialization.load_der_public_key(kms.get_public_key(KeyId=ecdh["KeyId"])[
        "PublicKey"])  # fmt: skip
    assert shared["SharedSecret"] == peer.exchange(ec.ECDH(), kms_pub)  # type: ignore[arg-type]

    signer = kms.create_key(KeySpec="ECC_SECG_P256K1", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    assert signer["SigningAlgorithms"] == ["ECDSA_SHA_256"]
    signed = kms.sign(KeyId=signer["KeyId"], Message=b"to sign", SigningAlgorithm="ECDSA_SHA_256")
    assert (signed["KeyId"], signed["SigningAlgorithm"]) == (signer["Arn"], "ECDSA_SHA_256")
    signer_pub = serialization.load_der_public_key(kms.get_public_key(KeyId=signer["KeyId"])[
        "PublicKey"])  # fmt: skip
    assert isinstance(signer_pub, ec.EllipticCurvePublicKey)
    signer_pub.verify(signed["Signature"], b"to sign", ec.ECDSA(hashes.SHA256()))
    verified = kms.verify(
        KeyId=signer["KeyId"], Message=hashes_sha256(b"to sign"), MessageType="DIGEST",
        Signature=signed["Signature"], SigningAlgorithm="ECDSA_SHA_256",
    )  # fmt: skip
    assert verified["SignatureValid"] is True and verified["KeyId"] == signer["Arn"]

    mac_key = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]
    assert mac_key["MacAlgorithms"] == ["HMAC_SHA_256"]
    mac = kms.generate_mac(KeyId=mac_key["KeyId"], Message=b"m", MacAlgorithm="HMAC_SHA_256")
    assert len(mac["Mac"]) == 32 and mac["MacAlgorithm"] == "HMAC_SHA_256"
    checked = kms.verify_mac(
        KeyId=mac_key["KeyId"], Message=b"m", Mac=mac["Mac"], MacAlgorithm="HMAC_SHA_256"
    )
    assert checked["MacValid"] is True and checked["KeyId"] == mac_key["Arn"]

    kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "env", "TagValue": "dev"}])
    kms.untag_resource(KeyId=key_id, TagKeys=["t"])
    assert kms.list_resource_tags(KeyId=key_id)["Tags"] == [{"TagKey": "env", "TagValue": "dev"}]

    assert kms.list_key_policies(KeyId=key_id)["PolicyNames"] == ["default"]
    policy = kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=policy)

    kms.enable_key_rotation(KeyId=key_id)
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True
    kms.rotate_key_on_demand(KeyId=key_id)
    assert kms.list_key_rotations(KeyId=key_id)["Rotations"]
    kms.disable_key_rotation(KeyId=key_id)
    # A ciphertext from before the rotation still decrypts.
    assert kms.decrypt(CiphertextBlob=dk["CiphertextBlob"])["Plaintext"] == dk["Plaintext"]

    kms.disable_key(KeyId=key_id)
    with pytest.raises(ClientError) as info:
        kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    assert error_code(info) == "DisabledException"
    kms.enable_key(KeyId=key_id)

    deletion = kms.schedule_key_deletion(KeyId=key2, PendingWindowInDays=7)
    assert deletion["KeyState"] == "PendingDeletion"
    kms.cancel_key_deletion(KeyId=key2)
    kms.delete_alias(AliasName="alias/lifecycle")

    assert set(model.OPERATIONS) <= called, sorted(set(model.OPERATIONS) - called)


def test_generate_data_key_with_recipient_is_decryptable_only_by_the_enclave_key(
    kms: Any, pki: TestPki, enclave_key: rsa.RSAPrivateKey
) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    doc = mint_document(pki, public_key=spki(enclave_key))
    resp = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256", Recipient=recipient(doc))
    assert "Plaintext" not in resp  # omitted, not null
    data_key = decrypt_ciphertext_for_recipient(resp["CiphertextForRecipient"], enclave_key)
    assert len(data_key) == 32
    # The CiphertextBlob is still returned and decrypts (without Recipient) to the same key.
    assert kms.decrypt(CiphertextBlob=resp["CiphertextBlob"])["Plaintext"] == data_key

    enc = kms.encrypt(KeyId=key_id, Plaintext=b"sealed", EncryptionContext={"a": "b"})
    dec = kms.decrypt(
        CiphertextBlob=enc["CiphertextBlob"], EncryptionContext={"a": "b"}, Recipient=recipient(doc)
    )
    assert "Plaintext" not in dec
    assert decrypt_ciphertext_for_recipient(dec["CiphertextForRecipient"], enclave_key) == (
        b"sealed"
    )
    rnd = kms.generate_random(NumberOfBytes=16, Recipient=recipient(doc))
    assert len(decrypt_ciphertext_for_recipient(rnd["CiphertextForRecipient"], enclave_key)) == 16


def test_key_policy_on_pcr0_allows_the_right_image_and_denies_others(
    kms: Any, pki: TestPki, enclave_key: rsa.RSAPrivateKey
) -> None:
    root = f"arn:aws:iam::{ACCOUNT}:root"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "admin", "Effect": "Allow", "Principal": {"AWS": root},
             "Action": ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:PutKeyPolicy", "kms:Encrypt"],
             "Resource": "*"},
            {"Sid": "enclave", "Effect": "Allow", "Principal": {"AWS": root},
             "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*",
             "Condition": {"StringEqualsIgnoreCase": {
                 "kms:RecipientAttestation:PCR0": PCR0.hex()}}},
        ],
    }  # fmt: skip
    key_id = kms.create_key(Policy=json.dumps(policy))["KeyMetadata"]["KeyId"]
    good = mint_document(pki, public_key=spki(enclave_key), pcrs={0: PCR0})
    resp = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256", Recipient=recipient(good))
    assert len(decrypt_ciphertext_for_recipient(resp["CiphertextForRecipient"], enclave_key)) == 32

    other_image = mint_document(pki, public_key=spki(enclave_key), pcrs={0: bytes(48)})
    for kwargs in ({"Recipient": recipient(other_image)}, {}):
        with pytest.raises(ClientError) as info:
            kms.generate_data_key(KeyId=key_id, KeySpec="AES_256", **kwargs)
        assert error_code(info) == "AccessDeniedException"
        assert "PCR" not in str(info.value)  # the reason goes to the audit log only


def test_document_from_an_untrusted_root_is_refused(
    kms: Any, enclave_key: rsa.RSAPrivateKey
) -> None:
    stranger = TestPki.create(b"not-configured", valid_from=datetime.now(UTC) - timedelta(hours=1))
    doc = mint_document(stranger, public_key=spki(enclave_key))
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as info:
        kms.generate_data_key(KeyId=key_id, KeySpec="AES_256", Recipient=recipient(doc))
    assert error_code(info) in ("AccessDeniedException", "ValidationException")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_unknown_key_wrong_context_and_other_principals(server: RunningServer, kms: Any) -> None:
    with pytest.raises(ClientError) as info:
        kms.describe_key(KeyId="00000000-0000-0000-0000-000000000000")
    assert error_code(info) == "NotFoundException"

    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"x", EncryptionContext={"k": "v"})[
        "CiphertextBlob"]  # fmt: skip
    with pytest.raises(ClientError) as info:
        kms.decrypt(CiphertextBlob=blob, EncryptionContext={"k": "other"})
    assert error_code(info) == "InvalidCiphertextException"

    # bob is a user of the same account. The default key policy names the account principal,
    # which admits the root user only (there is no IAM to delegate to): bob must be named.
    bob = client(server, BOB_KEY, BOB_SECRET)
    with pytest.raises(ClientError) as info:
        bob.decrypt(CiphertextBlob=blob, EncryptionContext={"k": "v"})
    assert error_code(info) == "AccessDeniedException"
    key_arn = kms.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"]
    policy = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    policy["Statement"].append(
        {
            "Sid": "BobDecrypts",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/bob"},
            "Action": "kms:Decrypt",
            "Resource": key_arn,
        }
    )
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(policy))
    assert bob.decrypt(CiphertextBlob=blob, EncryptionContext={"k": "v"})["Plaintext"] == b"x"


def hashes_sha256(message: bytes) -> bytes:
    h = hashes.Hash(hashes.SHA256())
    h.update(message)
    return h.finalize()


def test_bad_signature_and_bad_mac_are_modelled_errors_through_boto3(kms: Any) -> None:
    signer = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    signature = kms.sign(KeyId=signer["KeyId"], Message=b"m", SigningAlgorithm="ECDSA_SHA_256")[
        "Signature"]  # fmt: skip
    with pytest.raises(kms.exceptions.KMSInvalidSignatureException) as info:
        kms.verify(
            KeyId=signer["KeyId"], Message=b"another", Signature=signature,
            SigningAlgorithm="ECDSA_SHA_256",
        )  # fmt: skip
    assert error_code(info) == "KMSInvalidSignatureException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as info:
        kms.sign(KeyId=signer["KeyId"], Message=b"m", SigningAlgorithm="ECDSA_SHA_384")
    assert error_code(info) == "InvalidKeyUsageException"

    created = kms.create_key(KeySpec="HMAC_224", KeyUsage="GENERATE_VERIFY_MAC")
    mac_key = created["KeyMetadata"]["KeyId"]
    with pytest.raises(kms.exceptions.KMSInvalidMacException) as info:
        kms.verify_mac(KeyId=mac_key, Message=b"m", Mac=b"\x00" * 28, MacAlgorithm="HMAC_SHA_224")
    assert error_code(info) == "KMSInvalidMacException"


def test_wrong_secret_through_boto3_is_invalid_signature(server: RunningServer) -> None:
    with pytest.raises(ClientError) as info:
        client(server, ACCESS_KEY, "wrong").list_keys()
    assert error_code(info) == "InvalidSignatureException"


def readme_boto3_example() -> str:
    """The README's boto3 example, read from README.md so the two cannot drift apart."""
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    return next(b for b in blocks if b.startswith("import boto3\nkms = boto3.client("))


def test_readme_example(
    server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The credentials come from the environment, as printed by the first `enclave-kms serve`;
    # no config files of this machine are read. Only the port differs from the README.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    example = readme_boto3_example()
    assert len(example.splitlines()) == 5
    code = example.replace("http://127.0.0.1:4599", server.endpoint)
    exec(compile(code, "README", "exec"), {})  # noqa: S102 - running the documented snippet


def test_metrics_count_what_the_clients_did(server: RunningServer, kms: Any) -> None:
    kms.generate_random(NumberOfBytes=8)
    import httpx

    text = httpx.get(f"{server.endpoint}/metrics").text
    assert 'enclave_kms_requests_total{operation="GenerateRandom",outcome="ok"}' in text


def test_audit_command_lists_the_records(server: RunningServer, kms: Any) -> None:
    key_id = kms.create_key(Description="audited")["KeyMetadata"]["KeyId"]
    kms.generate_data_key(KeyId=key_id, KeySpec="AES_256", EncryptionContext={"tenant": "t1"})
    rows = audit_rows(server, key_id)
    ops = [r["operation"] for r in rows]
    assert "GenerateDataKey" in ops
    gdk = rows[ops.index("GenerateDataKey")]
    assert gdk["encryption_context_keys"] == ["tenant"]
    assert gdk["source_ip"] == "127.0.0.1"  # the TCP peer, as CloudTrail's sourceIPAddress
    assert "t1" not in json.dumps(rows)  # context values never reach the audit log
