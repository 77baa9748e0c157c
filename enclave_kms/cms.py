"""``CiphertextForRecipient``: the CMS envelope KMS returns to a Nitro enclave.

When a KMS request carries a ``Recipient`` (an attestation document with an RSA public key),
the secret in the response is wrapped in a CMS (RFC 5652) ``EnvelopedData``: a random 32-byte
content-encryption key (CEK) encrypted with RSAES-OAEP (SHA-256, MGF1-SHA-256, empty label) to
the enclave's key, and the secret encrypted with AES-256-CBC under the CEK.

:func:`build_ciphertext_for_recipient` reproduces the byte layout of real KMS output (BER with
indefinite outer lengths and 1000-byte content chunks, see ``CIPHERTEXT.md`` and
kms-recipient.md §4), which is what the official enclave client (aws-nitro-enclaves-sdk-c)
requires. :func:`parse_ciphertext_for_recipient` and :func:`decrypt_ciphertext_for_recipient`
accept that BER form, the primitive-content variant also seen from KMS, and plain DER from
other producers such as ``openssl cms -encrypt``.

Example::

    blob = build_ciphertext_for_recipient(data_key, enclave_public_key)
    assert decrypt_ciphertext_for_recipient(blob, enclave_private_key) == data_key

Security notes:
    * The envelope is *not* authenticated (CBC without a MAC, as real KMS does). Its integrity
      rests on the channel that carried it. A decryptor must therefore not reveal *why*
      decryption failed: every wrong-key, OAEP, CEK-length and padding failure raises the same
      :class:`CmsDecryptionError` with the same message (Bleichenbacher / padding-oracle
      hygiene). Timing differences in the underlying libraries are out of our control.
    * The CEK is held in a ``bytearray`` and overwritten after use. Python cannot guarantee
      erasure: the RSA and AES bindings may keep their own copies, and the plaintext returned
      by :func:`decrypt_ciphertext_for_recipient` is an immutable ``bytes``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from asn1crypto import algos, cms
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from enclave_kms._cms_ber import content_algorithm_der, frame_enveloped_data, recipient_infos_der
from enclave_kms._cms_strict import force_full_parse

__all__ = [
    "MAX_ENVELOPE_SIZE",
    "CmsDecryptionError",
    "CmsError",
    "CmsFormatError",
    "RecipientEnvelope",
    "build_ciphertext_for_recipient",
    "decrypt_ciphertext_for_recipient",
    "parse_ciphertext_for_recipient",
    "recipient_key_identifier",
]

#: Largest envelope the parser reads. The KMS model caps ``CiphertextType`` at 6144 bytes; our
#: own largest output (RSA-4096 recipient, 4096-byte plaintext -> 4112-byte ciphertext) is 4829
#: bytes. The extra headroom is for other producers' DER (issuerAndSerialNumber rids with long
#: names, several recipients) while still bounding the work done on untrusted input.
MAX_ENVELOPE_SIZE: Final = 8192

_CEK_SIZE: Final = 32  # AES-256
_IV_SIZE: Final = 16  # AES block
_BLOCK_BITS: Final = 128
_DECRYPT_FAILED: Final = "CMS decryption failed (wrong key or corrupted envelope)"


class CmsError(Exception):
    """Root of the errors raised by this module."""


class CmsFormatError(CmsError):
    """The input is not a well-formed or supported envelope; the message names the structure."""


class CmsDecryptionError(CmsError):
    """Decryption failed: wrong key, bad OAEP or CBC padding, or tampered content.

    The message is the same for every cause, on purpose.
    """


@dataclass(frozen=True)
class RecipientEnvelope:
    """The parts of a parsed ``CiphertextForRecipient`` needed to decrypt it.

    Attributes:
        rid_type: ``"subject_key_identifier"`` (KMS, ``openssl -keyid``) or
            ``"issuer_and_serial_number"`` (openssl default, LocalStack).
        rid: the SKI bytes, or the DER of the ``IssuerAndSerialNumber``. Opaque: KMS's
            32-byte SKI derivation is undocumented and no client matches on it.
        key_encryption_algorithm: always ``"rsaes_oaep"``.
        oaep_hash: the OAEP hash, always ``"sha256"``.
        mgf_hash: the MGF1 hash, always ``"sha256"``.
        content_algorithm: always ``"aes256_cbc"``.
        iv: the 16-byte CBC IV.
        encrypted_key: the RSA-OAEP-wrapped CEK (the modulus size).
        encrypted_content: the CBC ciphertext, chunks concatenated in order.
    """

    rid_type: Literal["subject_key_identifier", "issuer_and_serial_number"]
    rid: bytes
    key_encryption_algorithm: str
    oaep_hash: str
    mgf_hash: str
    content_algorithm: str
    iv: bytes
    encrypted_key: bytes = field(repr=False)
    encrypted_content: bytes = field(repr=False)


def recipient_key_identifier(public_key: RSAPublicKey) -> bytes:
    """Return the 32-byte rid we put in the KTRI: SHA-256 of the SubjectPublicKeyInfo DER.

    KMS's rid is also 32 bytes, but no public source says what it hashes; clients treat it as
    opaque (sdk-c skips it, ``openssl cms -decrypt -inkey`` tries every recipient).
    """
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).digest()


# RSAES-OAEP with SHA-256, MGF1-SHA-256 and the empty label (the only setting KMS uses). The
# padding object is an immutable description, so one instance serves every call.
_OAEP: Final = asym_padding.OAEP(
    mgf=asym_padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None
)
_BLOCK_SIZE: Final = _BLOCK_BITS // 8


def _pkcs7_pad(content: bytes) -> bytes:
    # RFC 5652 §6.3 content padding (PKCS #7): k - (len mod k) bytes, each of that value, 1..16.
    # Written out because it is two lines and cheaper than cryptography's padder object; the
    # decrypt side keeps cryptography's unpadder.
    count = _BLOCK_SIZE - len(content) % _BLOCK_SIZE
    return b"".join((content, bytes((count,)) * count))


def _wipe(buf: bytearray) -> None:
    buf[:] = bytes(len(buf))


def build_ciphertext_for_recipient(
    content: bytes,
    recipient_public_key: RSAPublicKey,
    *,
    randbytes: Callable[[int], bytes] = os.urandom,
) -> bytes:
    """Encrypt ``content`` to an enclave key in the exact BER layout real KMS emits.

    The CEK (32 bytes) and then the IV (16 bytes) are drawn from ``randbytes``; RSA-OAEP's own
    seed comes from OpenSSL's RNG. The CEK lives in a ``bytearray`` overwritten before return
    (best effort: Python and OpenSSL may keep copies).

    Args:
        content: the secret to wrap (KMS sends 1..4096 bytes; any length works).
        recipient_public_key: the RSA key from the attestation document's ``public_key``.
        randbytes: source of the CEK and IV, for tests.

    Returns:
        The ``CiphertextForRecipient`` bytes (BER ``ContentInfo``).

    Raises:
        TypeError: if the key is not an RSA public key.
        ValueError: if ``randbytes`` returns the wrong number of bytes.
    """
    if not isinstance(recipient_public_key, RSAPublicKey):
        raise TypeError("recipient_public_key must be an RSA public key")
    cek = bytearray(randbytes(_CEK_SIZE))
    try:
        iv = bytes(randbytes(_IV_SIZE))
        if len(cek) != _CEK_SIZE or len(iv) != _IV_SIZE:
            raise ValueError("randbytes returned the wrong number of bytes")
        encryptor = Cipher(algorithms.AES(cek), modes.CBC(iv)).encryptor()
        ciphertext = encryptor.update(_pkcs7_pad(content)) + encryptor.finalize()
        # cryptography's RSA encrypt takes only ``bytes``: this copy cannot be wiped.
        encrypted_key = recipient_public_key.encrypt(bytes(cek), _OAEP)
    finally:
        _wipe(cek)
    return frame_enveloped_data(
        recipient_infos_der=recipient_infos_der(
            recipient_key_identifier(recipient_public_key), encrypted_key
        ),
        content_algorithm_der=content_algorithm_der(iv),
        encrypted_content=ciphertext,
    )


@contextmanager
def _reading(where: str) -> Iterator[None]:
    """Turn any exception raised while reading ``where`` into a :class:`CmsFormatError`."""
    try:
        yield
    except CmsFormatError:
        raise
    except Exception as exc:  # asn1crypto raises ValueError, TypeError, KeyError, ...
        raise CmsFormatError(f"malformed CMS {where}") from exc


def _check_sha256(alg: Any, where: str) -> None:
    if alg["algorithm"].native != "sha256":
        raise CmsFormatError(f"unsupported {where}: only SHA-256 is used by KMS")
    # Parameters are NULL (KMS, BouncyCastle) or absent (openssl); anything else is wrong.
    if alg["parameters"].native is not None:
        raise CmsFormatError(f"malformed {where}: unexpected parameters")


def _read_ktri(enveloped: Any) -> Any:
    with _reading("recipientInfos"):
        infos = list(enveloped["recipient_infos"])
    # sdk-c uses the first KTRI only; we take the first recipient that is a KTRI.
    for info in infos:
        with _reading("RecipientInfo"):
            if info.name == "ktri":
                return info.chosen
    raise CmsFormatError("no KeyTransRecipientInfo in recipientInfos")


def _read_oaep(ktri: Any) -> None:
    with _reading("keyEncryptionAlgorithm"):
        kea = ktri["key_encryption_algorithm"]
        name = kea["algorithm"].native
        if name != "rsaes_oaep":
            raise CmsFormatError(f"unsupported keyEncryptionAlgorithm {name!r}: need RSAES-OAEP")
        params = kea["parameters"]
        if not isinstance(params, algos.RSAESOAEPParams):
            raise CmsFormatError("malformed keyEncryptionAlgorithm: missing RSAES-OAEP params")
        _check_sha256(params["hash_algorithm"], "RSAES-OAEP hashFunc")
        mgf = params["mask_gen_algorithm"]
        if mgf["algorithm"].native != "mgf1":
            raise CmsFormatError("unsupported RSAES-OAEP maskGenFunc: need MGF1")
        _check_sha256(mgf["parameters"], "RSAES-OAEP MGF1 hash")
        psource = params["p_source_algorithm"]
        if psource["algorithm"].native != "p_specified" or psource["parameters"].native != b"":
            raise CmsFormatError("unsupported RSAES-OAEP pSourceFunc: need the empty label")


def parse_ciphertext_for_recipient(data: bytes) -> RecipientEnvelope:
    """Parse a ``CiphertextForRecipient`` (BER as KMS sends it, or DER) without decrypting.

    Only what this module can decrypt is accepted: ``envelopedData`` whose first
    KeyTransRecipientInfo uses RSAES-OAEP with SHA-256 and MGF1-SHA-256 (the only setting KMS
    uses), and AES-256-CBC content with a 16-byte IV.

    Args:
        data: the envelope bytes.

    Returns:
        The parsed envelope.

    Raises:
        CmsFormatError: the input is malformed, too large, or uses an unsupported algorithm;
            the message names the structure at fault.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CmsFormatError("CMS input must be bytes")
    if len(data) > MAX_ENVELOPE_SIZE:
        raise CmsFormatError(f"CMS input is larger than {MAX_ENVELOPE_SIZE} bytes")
    with _reading("ContentInfo"):
        info = cms.ContentInfo.load(bytes(data), strict=True)
        content_type = info["content_type"].native
    if content_type != "enveloped_data":
        raise CmsFormatError(f"unsupported ContentInfo contentType {content_type!r}")
    with _reading("EnvelopedData"):
        enveloped = info["content"]
        # Force the whole EnvelopedData to parse so trailing garbage inside any layer fails
        # here, with a format error, rather than being silently ignored. Same checks as
        # ``enveloped.native``, without building the native tree (see _cms_strict).
        force_full_parse(enveloped)
    with _reading("EnvelopedData version"):
        version = enveloped["version"].native
    # RFC 5652 §6.1: v0 (all recipients v0, e.g. openssl with issuerAndSerialNumber) or v2
    # (KMS, openssl -keyid); v3/v4 need pwri/ori recipients or originator certs we never use.
    if version not in ("v0", "v2"):
        raise CmsFormatError(f"unsupported EnvelopedData version {version!r}")
    ktri = _read_ktri(enveloped)
    with _reading("KeyTransRecipientInfo rid"):
        ktri_version = ktri["version"].native
        rid_choice = ktri["rid"]
        rid_type = rid_choice.name
        rid = (
            bytes(rid_choice.chosen.native)
            if rid_type == "subject_key_identifier"
            else bytes(rid_choice.chosen.dump())
        )
    # RFC 5652 §6.2.1: version 2 with a subjectKeyIdentifier rid, 0 with issuerAndSerialNumber.
    if ktri_version != ("v2" if rid_type == "subject_key_identifier" else "v0"):
        raise CmsFormatError(f"KeyTransRecipientInfo version {ktri_version!r} does not match rid")
    # RFC 5652 §6.1: any recipient other than v0 makes the EnvelopedData v2.
    if ktri_version == "v2" and version != "v2":
        raise CmsFormatError("EnvelopedData version must be v2 with a v2 recipient")
    _read_oaep(ktri)
    with _reading("encryptedKey"):
        encrypted_key = bytes(ktri["encrypted_key"].native)
    with _reading("EncryptedContentInfo"):
        eci = enveloped["encrypted_content_info"]
        eci_type = eci["content_type"].native
        cea = eci["content_encryption_algorithm"]
        cea_name = cea["algorithm"].native
    if eci_type != "data":
        raise CmsFormatError(f"unsupported EncryptedContentInfo contentType {eci_type!r}")
    if cea_name != "aes256_cbc":
        raise CmsFormatError(
            f"unsupported contentEncryptionAlgorithm {cea_name!r}: need AES-256-CBC"
        )
    with _reading("aes-256-cbc parameters"):
        iv = cea["parameters"].native
    if not isinstance(iv, bytes) or len(iv) != _IV_SIZE:
        raise CmsFormatError("malformed aes-256-cbc parameters: the IV must be 16 bytes")
    with _reading("encryptedContent"):
        content_field = eci["encrypted_content"]
        encrypted_content = content_field.native
    if not isinstance(encrypted_content, bytes):
        raise CmsFormatError("missing encryptedContent (detached content is not supported)")
    if not encrypted_content or len(encrypted_content) % (_BLOCK_BITS // 8):
        raise CmsFormatError("malformed encryptedContent: not a multiple of the AES block size")
    return RecipientEnvelope(
        rid_type=rid_type,
        rid=rid,
        key_encryption_algorithm="rsaes_oaep",
        oaep_hash="sha256",
        mgf_hash="sha256",
        content_algorithm="aes256_cbc",
        iv=iv,
        encrypted_key=encrypted_key,
        encrypted_content=encrypted_content,
    )


def decrypt_ciphertext_for_recipient(data: bytes, private_key: RSAPrivateKey) -> bytes:
    """Parse and decrypt a ``CiphertextForRecipient`` with the enclave's private key.

    Args:
        data: the envelope bytes (BER or DER).
        private_key: the RSA key whose public half was in the attestation document.

    Returns:
        The wrapped secret (data key, plaintext, random bytes or PKCS#8 private key).

    Raises:
        CmsFormatError: the envelope is malformed or unsupported.
        CmsDecryptionError: wrong key, bad padding or tampered content; one message for all.
        TypeError: if ``private_key`` is not an RSA private key.
    """
    if not isinstance(private_key, RSAPrivateKey):
        raise TypeError("private_key must be an RSA private key")
    envelope = parse_ciphertext_for_recipient(data)
    cek = bytearray()
    try:
        # Every failure below leaves through the same exception and message, so a caller that
        # relays errors cannot serve as an OAEP or CBC padding oracle.
        try:
            cek = bytearray(private_key.decrypt(envelope.encrypted_key, _OAEP))
            if len(cek) != _CEK_SIZE:
                raise ValueError("wrong CEK length")
            decryptor = Cipher(algorithms.AES(cek), modes.CBC(envelope.iv)).decryptor()
            padded = decryptor.update(envelope.encrypted_content) + decryptor.finalize()
            unpadder = padding.PKCS7(_BLOCK_BITS).unpadder()
            return unpadder.update(padded) + unpadder.finalize()
        except Exception:
            raise CmsDecryptionError(_DECRYPT_FAILED) from None
    finally:
        _wipe(cek)
