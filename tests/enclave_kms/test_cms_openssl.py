"""CiphertextForRecipient interop with the openssl CLI, in both directions (kms-recipient.md §6)."""

from __future__ import annotations

import datetime
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from enclave_kms.cms import (
    build_ciphertext_for_recipient,
    decrypt_ciphertext_for_recipient,
    parse_ciphertext_for_recipient,
)

OPENSSL = shutil.which("openssl")
pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(OPENSSL is None, reason="the openssl CLI is not installed"),
]


def _openssl(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    assert OPENSSL is not None
    return subprocess.run([OPENSSL, *map(str, args)], capture_output=True, check=False, timeout=60)


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def key_pem(key: rsa.RSAPrivateKey, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cms") / "key.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


@pytest.fixture(scope="module")
def cert_pem(key: rsa.RSAPrivateKey, key_pem: Path) -> Path:
    """A self-signed certificate for ``key``, with an SKI so ``-keyid`` works."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "enclave-kms cms interop test")])
    now = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(4242)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    path = key_pem.parent / "cert.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


@pytest.mark.parametrize("size", [1, 32, 1000, 4096])
def test_openssl_decrypts_ours(key: rsa.RSAPrivateKey, key_pem: Path, size: int) -> None:
    content = bytes((i * 31 + 5) & 0xFF for i in range(size))
    envelope = key_pem.parent / f"ours-{size}.cms"
    out = key_pem.parent / f"ours-{size}.out"
    envelope.write_bytes(build_ciphertext_for_recipient(content, key.public_key()))
    # No -recip: our 32-byte SKI matches no certificate, exactly as with real KMS output.
    result = _openssl(
        "cms", "-decrypt", "-debug_decrypt", "-inform", "DER", "-binary",
        "-in", envelope, "-inkey", key_pem, "-out", out,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    assert out.read_bytes() == content


def test_openssl_rejects_ours_with_another_key(key: rsa.RSAPrivateKey, key_pem: Path) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    envelope = key_pem.parent / "other.cms"
    envelope.write_bytes(build_ciphertext_for_recipient(b"k" * 32, other.public_key()))
    result = _openssl(
        "cms", "-decrypt", "-debug_decrypt", "-inform", "DER", "-binary",
        "-in", envelope, "-inkey", key_pem, "-out", key_pem.parent / "other.out",
    )  # fmt: skip
    assert result.returncode == 4


def test_openssl_asn1parse_reads_ours(key: rsa.RSAPrivateKey, key_pem: Path) -> None:
    envelope = key_pem.parent / "parse.cms"
    envelope.write_bytes(build_ciphertext_for_recipient(bytes(4096), key.public_key()))
    result = _openssl("asn1parse", "-inform", "DER", "-i", "-in", envelope)
    assert result.returncode == 0, result.stderr.decode()
    text = result.stdout.decode()
    assert text.count("l=inf") == 5
    assert "rsaesOaep" in text
    assert "aes-256-cbc" in text
    assert text.count("l=1000 prim:") == 4  # the 1000-byte content chunks


@pytest.mark.parametrize(
    ("rid_flags", "rid_type"),
    [(["-keyid"], "subject_key_identifier"), ([], "issuer_and_serial_number")],
)
@pytest.mark.parametrize("size", [1, 32, 4096])
def test_we_decrypt_openssl_der(
    key: rsa.RSAPrivateKey,
    cert_pem: Path,
    rid_flags: list[str],
    rid_type: str,
    size: int,
) -> None:
    content = bytes((i * 13 + 1) & 0xFF for i in range(size))
    plain = cert_pem.parent / f"pt-{size}.bin"
    plain.write_bytes(content)
    envelope = cert_pem.parent / f"ossl-{size}-{rid_type}.cms"
    result = _openssl(
        "cms", "-encrypt", "-binary", "-aes-256-cbc", "-recip", cert_pem, *rid_flags,
        "-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256",
        "-keyopt", "rsa_mgf1_md:sha256", "-outform", "DER", "-in", plain, "-out", envelope,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    data = envelope.read_bytes()
    assert data[:2] != b"\x30\x80"  # openssl emits definite-length DER, not KMS's BER
    parsed = parse_ciphertext_for_recipient(data)
    assert parsed.rid_type == rid_type
    if rid_type == "subject_key_identifier":
        assert len(parsed.rid) == 20  # openssl's SHA-1 SKI, unlike KMS's 32 bytes
    assert decrypt_ciphertext_for_recipient(data, key) == content
