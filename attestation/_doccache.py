"""A bounded cache of documents whose decoding and COSE signature have been verified.

An enclave SDK reuses one attestation document for many KMS calls (kmstool's client and
``enclave_kms.enclave`` cache theirs for minutes), so a service sees the same bytes again and
again. What is cached is only what cannot change for given bytes: that they decode to this
document and that the COSE signature verifies under the key of the certificate they carry. Each
lookup is keyed by the SHA-256 of the exact bytes, so any change to any byte is a miss. Nothing
time-dependent is cached here: the chain's validity at the verification time, the freshness
check and the caller's policy are applied again on every use.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

    from .document import AttestationDocument

__all__ = ["SignedDocumentCache"]


class SignedDocumentCache:
    """Thread-safe LRU: SHA-256(bytes) → (document, parsed public key), successes only."""

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError("document cache size must not be negative")
        self._size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[bytes, tuple[AttestationDocument, PublicKeyTypes | None]] = (
            OrderedDict()
        )

    @staticmethod
    def key(data: bytes) -> bytes:
        """The cache key for ``data``: its SHA-256."""
        return hashlib.sha256(data).digest()

    def get(self, key: bytes) -> tuple[AttestationDocument, PublicKeyTypes | None] | None:
        """The verified document for ``key``, or ``None``."""
        if not self._size:
            return None
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
            return hit

    def put(
        self, key: bytes, document: AttestationDocument, public_key: PublicKeyTypes | None
    ) -> None:
        """Remember a document whose decoding and signature verified."""
        if not self._size:
            return
        with self._lock:
            self._entries[key] = (document, public_key)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._entries.clear()
