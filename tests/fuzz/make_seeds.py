"""Generate the committed seed corpora under ``fixtures/fuzz/<target>/``.

Run from the repository root: ``.venv/bin/python tests/fuzz/make_seeds.py``.

- attestation: every ``fixtures/nitro/*.cose`` (genuine and invalid, byte for byte) plus three
  documents minted by the fuzz test PKI at ``DOC_TIME`` (deterministic: seeded keys, RFC 6979
  signatures), which the mutator can re-sign.
- cms: the four real KMS samples from ``fixtures/kms/`` byte for byte, our builder's BER output,
  its DER re-encoding, and, when ``openssl`` is installed, ``openssl cms -encrypt`` output with
  both rid forms. These are randomised (RSA-OAEP, fresh key), so they are checked by parsing,
  not byte for byte, and the throwaway key is discarded: they are parser seeds.
- ciphertext: blobs sealed with the fixed test key and a seeded nonce (deterministic).
- wire: one well-typed body per operation, built from botocore's KMS model (deterministic).
"""

from __future__ import annotations

import base64
import json
import random
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _mutators import Node, encode_tlv, parse_tlv
from _targets import CORPORA
from _targets_attestation import DOC_TIME, NONCE, fuzz_pki
from _targets_kms import (
    BLOB_CONTEXT,
    BLOB_KEY,
    BLOB_KEY_ID,
    _definite,
    split_wire,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from attestation.testing.mint import mint_document
from attestation.testing.pki import derive_p384_key
from enclave_kms._ciphertext import seal
from enclave_kms.cms import build_ciphertext_for_recipient
from enclave_kms.model import OPERATIONS
from enclave_kms.server._wire import kms_service_model

FIXTURES = CORPORA.parent


def _write(target: str, seeds: dict[str, bytes]) -> None:
    d = CORPORA / target
    d.mkdir(parents=True, exist_ok=True)
    for name, data in seeds.items():
        (d / name).write_bytes(data)


def attestation() -> dict[str, bytes]:
    """Deterministic: compared byte for byte with the committed files by the test suite."""
    out = {src.name: src.read_bytes() for src in sorted((FIXTURES / "nitro").glob("*.cose"))}
    pki = fuzz_pki()
    spki = (
        derive_p384_key(b"fuzz", "public_key")
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    out["minted-plain.cose"] = mint_document(pki, timestamp=DOC_TIME)
    out["minted-key-nonce.cose"] = mint_document(
        pki, timestamp=DOC_TIME, public_key=spki, nonce=NONCE, user_data=b"u"
    )
    out["minted-debug.cose"] = mint_document(pki, timestamp=DOC_TIME, debug=True)
    return out


def _openssl_envelopes(key: rsa.RSAPrivateKey) -> dict[str, bytes]:
    if shutil.which("openssl") is None:
        return {}
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fuzz recipient DO NOT TRUST")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        pem = Path(tmp) / "cert.pem"
        pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (Path(tmp) / "in").write_bytes(b"0123456789abcdef0123456789abcdef")
        for label, extra in (("openssl-issuer-serial.der", []), ("openssl-keyid.der", ["-keyid"])):
            cmd = [
                "openssl", "cms", "-encrypt", "-binary", "-aes-256-cbc",
                "-in", str(Path(tmp) / "in"), "-outform", "DER", "-recip", str(pem), *extra,
                "-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256",
                "-keyopt", "rsa_mgf1_md:sha256",
            ]  # fmt: skip
            out[label] = subprocess.run(cmd, check=True, capture_output=True).stdout
    return out


def _primitive_strings(nodes: list[Node]) -> None:
    """DER: a constructed string (children all OCTET STRINGs) becomes one primitive."""
    for n in nodes:
        if n.children is None:
            continue
        if n.children and all(c.ident == b"\x04" and c.children is None for c in n.children):
            n.content = b"".join(c.content for c in n.children)
            n.children = None
            n.ident = bytes([n.ident[0] & ~0x20])
        else:
            _primitive_strings(n.children)


def cms() -> dict[str, bytes]:
    """Randomised (fresh key, OAEP) apart from the copied KMS samples."""
    out = {
        src.name: src.read_bytes()
        for src in sorted((FIXTURES / "kms").iterdir())
        if src.suffix in (".ber", ".der")
    }
    key = rsa.generate_private_key(65537, 2048)
    ber = build_ciphertext_for_recipient(bytes(32), key.public_key())
    out["builder-ber.ber"] = ber
    nodes = parse_tlv(ber)
    _definite(nodes)
    # Legal BER that asn1crypto refuses: a constructed [0] encryptedContent of definite length.
    out["constructed-definite-content.ber"] = encode_tlv(nodes)
    _primitive_strings(nodes)
    out["builder-der.der"] = encode_tlv(nodes)
    out.update(_openssl_envelopes(key))
    return out


def ciphertext() -> dict[str, bytes]:
    """Deterministic (seeded nonce)."""
    rng = random.Random(7)
    cases = {
        "valid-32.blob": (BLOB_KEY_ID, 1, bytes(32), BLOB_CONTEXT),
        "valid-empty.blob": (BLOB_KEY_ID, 0, b"", BLOB_CONTEXT),
        "other-context.blob": (BLOB_KEY_ID, 1, b"secret", {}),
        "version-max.blob": (BLOB_KEY_ID, 2**32 - 1, b"x" * 100, BLOB_CONTEXT),
    }
    out = {}
    for name, (key_id, version, plaintext, ctx) in cases.items():
        blob = seal(
            key_id=key_id,
            key_version=version,
            backing_key=BLOB_KEY,
            plaintext=plaintext,
            encryption_context=ctx,
            randbytes=rng.randbytes,
        )
        out[name] = blob
    return out


def _example(shape: Any, depth: int = 0) -> Any:
    kind = shape.type_name
    if kind == "string":
        return shape.enum[0] if getattr(shape, "enum", None) else "alias/fuzz"
    if kind == "blob":
        return base64.b64encode(b"fuzz-bytes").decode()
    if kind in ("integer", "long"):
        return 32
    if kind == "boolean":
        return True
    if kind == "timestamp":
        return 1700000000
    if kind == "list":
        return [_example(shape.member, depth + 1)] if depth < 3 else []
    if kind == "map":
        return {"purpose": _example(shape.value, depth + 1)} if depth < 3 else {}
    if depth >= 3:
        return {}
    return {name: _example(member, depth + 1) for name, member in shape.members.items()}


def wire() -> dict[str, bytes]:
    """Deterministic (botocore's model)."""
    model = kms_service_model()
    out = {}
    for operation in sorted(OPERATIONS):
        shape = model.operation_model(operation).input_shape
        body = json.dumps(_example(shape) if shape is not None else {}, sort_keys=True)
        data = operation.encode() + b"\n" + body.encode()
        assert split_wire(data)[0] == operation
        out[f"{operation}.json"] = data
    return out


#: Corpus directory -> generator; ``cms`` is randomised, the others are byte-for-byte stable.
GENERATORS = {"attestation": attestation, "cms": cms, "ciphertext": ciphertext, "wire": wire}


if __name__ == "__main__":
    for target, make in GENERATORS.items():
        _write(target, make())
        print(f"{target}: {sum(1 for _ in (CORPORA / target).iterdir())} files")
