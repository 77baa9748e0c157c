"""A bounded cache of documents whose decoding and COSE signature have been verified.

An enclave SDK reuses one attestation document for many KMS calls (kmstool's client and
``enclave_kms.enclave`` cache theirs for minutes), so a service sees the same bytes again and
again. What is cached is only what cannot change for given bytes: that they decode to this
document and that the COSE signature verifies under the key of the certificate they carry. A
hit requires the exact bytes, so any change to any byte is a miss. Nothing time-dependent is
cached here: the chain's validity at the verification time, the freshness check and the
caller's policy are applied again on every use.

Entries are found by the last 96 bytes of the input (where a COSE_Sign1 carries its ES384
signature, so documents differ there) and keep the whole input: a hit requires the stored bytes
to equal the given ones exactly, so what is served is the same as with a digest of the whole
input as the key, without hashing 7.5 kB per call (4.5 us). Inputs that share a tail only
replace each other's entry.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

    from .document import AttestationDocument

__all__ = ["SignedDocumentCache"]


_TAIL = 96  # an ES384 signature: r || s


class SignedDocumentCache:
    """Thread-safe LRU: exact input bytes → (document, parsed public key), successes only."""

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError("document cache size must not be negative")
        self._size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[
            bytes, tuple[bytes, AttestationDocument, PublicKeyTypes | None]
        ] = OrderedDict()

    def get(self, data: bytes) -> tuple[AttestationDocument, PublicKeyTypes | None] | None:
        """The verified document for exactly ``data``, or ``None``."""
        if not self._size:
            return None
        tail = data[-_TAIL:]
        with self._lock:
            hit = self._entries.get(tail)
            if hit is None or hit[0] != data:
                return None
            self._entries.move_to_end(tail)
        return hit[1], hit[2]

    def put(
        self, data: bytes, document: AttestationDocument, public_key: PublicKeyTypes | None
    ) -> None:
        """Remember ``data``, whose decoding and signature verified."""
        if not self._size:
            return
        tail = data[-_TAIL:]
        with self._lock:
            self._entries[tail] = (data, document, public_key)
            self._entries.move_to_end(tail)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def make_room(self) -> None:
        """Evict the least recently used entry if the cache is full, so the next put need not.

        The verifier calls this on its helper thread beside a signature check: freeing an
        evicted document (its objects and its parsed key) costs about 3 us, on whichever
        thread evicts it.
        """
        with self._lock:
            while self._entries and len(self._entries) >= self._size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._entries.clear()
