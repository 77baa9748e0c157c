"""The root key: loads or generates it, and wraps backing key material at rest.

Every backing key (one per key version) is stored encrypted with AES-256-GCM under a 32-byte
root key, with the key id and version as associated data so a wrapped blob cannot be moved to
another key or version. The store keeps a *check value* of the root key
(HMAC-SHA-256 of a fixed label), so starting with a different or lost root key fails with
:class:`RootKeyMismatchError` instead of yielding garbage.

Sources, in order: an explicit ``key`` argument; ``ENCLAVE_KMS_ROOT_KEY`` (base64 of 32
bytes); ``ENCLAVE_KMS_ROOT_KEY_FILE`` or a ``key_file`` argument (a file holding the 32 raw
bytes or their base64); else ``<data_dir>/root.key``, generated on first start with mode 0600.
The key is held in a ``bytearray``; :meth:`RootKey.close` overwrites it, but Python cannot
guarantee that no other copy exists in memory (the cryptography library copies its inputs).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "ROOT_KEY_ENV",
    "ROOT_KEY_FILE_ENV",
    "RootKey",
    "RootKeyError",
    "RootKeyMismatchError",
    "load_root_key",
]

ROOT_KEY_ENV = "ENCLAVE_KMS_ROOT_KEY"
ROOT_KEY_FILE_ENV = "ENCLAVE_KMS_ROOT_KEY_FILE"
_FILE_NAME = "root.key"
_CHECK_LABEL = b"enclave-kms root key check value v1"
_WRAP_FORMAT = b"\x01"  # first byte of a wrapped blob; lets the format evolve
_NONCE_LEN = 12


class RootKeyError(Exception):
    """The root key is missing, malformed, or cannot unwrap stored material."""


class RootKeyMismatchError(RootKeyError):
    """The root key is not the one the store was created with (lost or changed root key)."""


class RootKey:
    """A 32-byte AES-256-GCM key that wraps backing key material.

    Args:
        key: exactly 32 bytes (copied into an internal ``bytearray``).
        randbytes: the randomness source for nonces.

    Raises:
        RootKeyError: ``key`` is not 32 bytes.
    """

    def __init__(self, key: bytes, *, randbytes: Callable[[int], bytes] = os.urandom) -> None:
        if len(key) != 32:
            raise RootKeyError(f"the root key must be 32 bytes, not {len(key)}")
        self._key = bytearray(key)
        self._aead = AESGCM(bytes(self._key))
        self._randbytes = randbytes

    def __repr__(self) -> str:
        return "RootKey(<redacted>)"

    def check_value(self) -> str:
        """Return the hex check value the store keeps to detect a different root key."""
        return hmac.new(bytes(self._key), _CHECK_LABEL, hashlib.sha256).hexdigest()

    def verify_check_value(self, stored: str) -> None:
        """Compare with the store's check value.

        Raises:
            RootKeyMismatchError: the values differ.
        """
        if not hmac.compare_digest(stored, self.check_value()):
            raise RootKeyMismatchError(
                "the root key does not match the one this data directory was created with; "
                f"supply the original key (via {ROOT_KEY_ENV}, {ROOT_KEY_FILE_ENV} or "
                f"{_FILE_NAME} in the data directory)"
            )

    @staticmethod
    def _aad(key_id: str, version: int) -> bytes:
        return b"enclave-kms/backing-key/v1|" + key_id.encode() + b"|" + str(version).encode()

    def wrap(self, key_id: str, version: int, material: bytes | bytearray) -> bytes:
        """Encrypt backing material for storage, bound to ``key_id`` and ``version``."""
        nonce = self._randbytes(_NONCE_LEN)
        return (
            _WRAP_FORMAT
            + nonce
            + self._aead.encrypt(nonce, bytes(material), self._aad(key_id, version))
        )

    def unwrap(self, key_id: str, version: int, wrapped: bytes) -> bytearray:
        """Decrypt stored material for ``key_id`` / ``version``.

        Raises:
            RootKeyError: the blob is damaged, belongs to another key or version, or was
                wrapped under another root key.
        """
        if len(wrapped) < 1 + _NONCE_LEN + 16 or wrapped[:1] != _WRAP_FORMAT:
            raise RootKeyError(f"stored material for {key_id} v{version} is malformed")
        nonce, body = wrapped[1 : 1 + _NONCE_LEN], wrapped[1 + _NONCE_LEN :]
        try:
            return bytearray(self._aead.decrypt(nonce, body, self._aad(key_id, version)))
        except InvalidTag:
            raise RootKeyError(
                f"stored material for {key_id} v{version} does not authenticate under the root key"
            ) from None

    def close(self) -> None:
        """Overwrite the in-memory copy (best effort; see the module docstring)."""
        for i in range(len(self._key)):
            self._key[i] = 0


def _decode_key_text(raw: bytes, source: str) -> bytes:
    if len(raw) == 32:
        return raw
    try:
        decoded = base64.b64decode(raw.strip(), validate=True)
    except binascii.Error:
        raise RootKeyError(
            f"the root key from {source} is neither 32 raw bytes nor base64"
        ) from None
    if len(decoded) != 32:
        raise RootKeyError(
            f"the root key from {source} must decode to 32 bytes, not {len(decoded)}"
        )
    return decoded


def load_root_key(
    data_dir: Path,
    *,
    key: bytes | None = None,
    key_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    randbytes: Callable[[int], bytes] = secrets.token_bytes,
) -> RootKey:
    """Load the root key from the first configured source, or generate one in ``data_dir``.

    Args:
        data_dir: the data directory (``root.key`` lives here when nothing else is given).
        key: the 32-byte key itself.
        key_file: a file holding the key (32 raw bytes or base64).
        environ: the environment to read (``os.environ`` by default).
        randbytes: randomness for a newly generated key.

    Returns:
        The root key.

    Raises:
        RootKeyError: a configured source is unreadable or not a 32-byte key.
    """
    env = os.environ if environ is None else environ
    if key is not None:
        return RootKey(_decode_key_text(key, "the key argument"))
    if ROOT_KEY_ENV in env:
        return RootKey(_decode_key_text(env[ROOT_KEY_ENV].encode(), ROOT_KEY_ENV))
    path = key_file if key_file is not None else env.get(ROOT_KEY_FILE_ENV)
    if path is not None:
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise RootKeyError(f"cannot read the root key file {path}: {exc.strerror}") from None
        return RootKey(_decode_key_text(raw, str(path)))
    return RootKey(_load_or_create_file(data_dir / _FILE_NAME, randbytes))


def _load_or_create_file(path: Path, randbytes: Callable[[int], bytes]) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Write a complete 0600 temp file, then link it into place: link() fails if the name
        # exists, so when two processes start at once exactly one key wins and nobody ever
        # reads a half-written file.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, randbytes(32))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    raw = path.read_bytes()
    if len(raw) != 32:
        raise RootKeyError(f"{path} must hold exactly 32 bytes, not {len(raw)}")
    return raw
