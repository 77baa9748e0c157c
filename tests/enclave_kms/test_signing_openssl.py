"""KMS signatures verified by the openssl CLI with the public key from GetPublicKey.

What a user outside KMS does: fetch the DER SubjectPublicKeyInfo once, then verify offline.
The store plays no part in the signature format, so these run on the SQLite store only.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
from test_service_support import ROOT_CALLER, new_key
from test_service_support import clock as clock
from test_service_support import db_path as db_path
from test_service_support import service as service

from enclave_kms.model import GetPublicKeyRequest, SignRequest
from enclave_kms.service import KmsService

OPENSSL = shutil.which("openssl")
pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(OPENSSL is None, reason="the openssl CLI is not installed"),
    pytest.mark.parametrize("db_path", ["sqlite"], indirect=True),
]
MESSAGE = b"signed by enclave-kms, checked by openssl\n"


def _openssl(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    assert OPENSSL is not None
    return subprocess.run([OPENSSL, *map(str, args)], capture_output=True, check=False, timeout=60)


def _public_key(service: KmsService, kid: str, tmp_path: Path) -> Path:
    der = service.get_public_key(ROOT_CALLER, GetPublicKeyRequest(key_id=kid)).public_key
    assert der is not None
    path = tmp_path / f"{kid}.pub.der"
    path.write_bytes(der)
    return path


def _sign(
    service: KmsService, kid: str, algorithm: str, message: bytes, message_type: str = "RAW"
) -> bytes:
    signature = service.sign(
        ROOT_CALLER,
        SignRequest(
            key_id=kid, message=message, message_type=message_type, signing_algorithm=algorithm
        ),
    ).signature
    assert signature is not None
    return signature


def _dgst_verify(
    public: Path, digest: str, message: bytes, signature: bytes, tmp_path: Path, *opts: str
) -> subprocess.CompletedProcess[bytes]:
    (tmp_path / "msg").write_bytes(message)
    (tmp_path / "sig").write_bytes(signature)
    return _openssl(
        "dgst", f"-{digest}", "-verify", public, "-keyform", "DER",
        *opts, "-signature", tmp_path / "sig", tmp_path / "msg",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "algorithm", "digest"),
    [
        ("ECC_NIST_P256", "ECDSA_SHA_256", "sha256"),
        ("ECC_SECG_P256K1", "ECDSA_SHA_256", "sha256"),
        ("ECC_NIST_P384", "ECDSA_SHA_384", "sha384"),
    ],
)
def test_ecdsa_signature_verifies_with_openssl_dgst(
    service: KmsService, tmp_path: Path, spec: str, algorithm: str, digest: str
) -> None:
    kid = new_key(service, key_spec=spec, key_usage="SIGN_VERIFY")
    public = _public_key(service, kid, tmp_path)
    signature = _sign(service, kid, algorithm, MESSAGE)
    ok = _dgst_verify(public, digest, MESSAGE, signature, tmp_path)
    assert ok.returncode == 0, ok.stderr.decode(errors="replace")
    assert b"Verified OK" in ok.stdout
    # openssl is really checking: another message fails.
    bad = _dgst_verify(public, digest, MESSAGE + b"!", signature, tmp_path)
    assert bad.returncode != 0 and b"Verification failure" in bad.stdout


def test_rsassa_pss_sha_256_verifies_with_openssl_pkeyutl(
    service: KmsService, tmp_path: Path
) -> None:
    kid = new_key(service, key_spec="RSA_2048", key_usage="SIGN_VERIFY")
    public = _public_key(service, kid, tmp_path)
    digest = hashlib.sha256(MESSAGE).digest()
    (tmp_path / "digest").write_bytes(digest)

    def pkeyutl(signature: bytes) -> subprocess.CompletedProcess[bytes]:
        (tmp_path / "sig").write_bytes(signature)
        # The salt length is pinned to the digest length (32), as AWS KMS signs: openssl
        # refuses a PSS signature whose salt has another length.
        return _openssl(
            "pkeyutl", "-verify", "-pubin", "-inkey", public, "-keyform", "DER",
            "-in", tmp_path / "digest", "-sigfile", tmp_path / "sig",
            "-pkeyopt", "digest:sha256", "-pkeyopt", "rsa_padding_mode:pss",
            "-pkeyopt", "rsa_pss_saltlen:32", "-pkeyopt", "rsa_mgf1_md:sha256",
        )  # fmt: skip

    for signature in (
        _sign(service, kid, "RSASSA_PSS_SHA_256", MESSAGE),
        _sign(service, kid, "RSASSA_PSS_SHA_256", digest, "DIGEST"),
    ):
        ok = pkeyutl(signature)
        assert ok.returncode == 0, ok.stderr.decode(errors="replace")
        assert b"Signature Verified Successfully" in ok.stdout
        # openssl dgst agrees (a full-message check, same parameters).
        dgst = _dgst_verify(
            public, "sha256", MESSAGE, signature, tmp_path,
            "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32",
        )  # fmt: skip
        assert dgst.returncode == 0, dgst.stderr.decode(errors="replace")
    # A PKCS#1 v1.5 signature is refused under the PSS options: the check is real.
    bad = pkeyutl(_sign(service, kid, "RSASSA_PKCS1_V1_5_SHA_256", MESSAGE))
    assert bad.returncode != 0
    pkcs1 = _dgst_verify(
        public,
        "sha256",
        MESSAGE,
        _sign(service, kid, "RSASSA_PKCS1_V1_5_SHA_256", MESSAGE),
        tmp_path,
    )
    assert pkcs1.returncode == 0, pkcs1.stderr.decode(errors="replace")
