"""The KMS service: every supported operation as a method, no web framework, no globals.

Contract for adapters: for each entry ``name -> (Request, Response, method)`` in
:data:`enclave_kms.model.OPERATIONS`, ``getattr(service, method)(caller, request)`` takes a
:class:`~enclave_kms.model.Caller` and a ``Request`` and returns a ``Response``, or raises a
:class:`~enclave_kms.errors.KmsError` subclass (which carries the AWS ``__type`` and HTTP status).
Every call writes one audit record (see :mod:`enclave_kms.audit`).

Construction::

    service = KmsService(store, region="eu-west-1", account_id="111122223333",
                         verifier=Verifier())
    # or, for the server and CLI:
    service = open_service(data_dir, region="eu-west-1", account_id="111122223333")

Not implemented: Sign/Verify (and so SIGN_VERIFY keys), HMAC keys, grants, imported key
material, custom key stores and multi-Region keys; they answer UnsupportedOperationException
or are absent from :data:`~enclave_kms.model.OPERATIONS`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509

from attestation import Verifier
from enclave_kms._rootkey import RootKeyError, RootKeyMismatchError, load_root_key
from enclave_kms._service_aliases import AliasAndPolicyOperations
from enclave_kms._service_core import Clock, _utc_now
from enclave_kms._service_crypto import CryptoOperations
from enclave_kms._service_rotation import RotationOperations
from enclave_kms.audit import AuditRecord, AuditSink
from enclave_kms.store import Store

__all__ = [
    "KmsService",
    "RootKeyError",
    "RootKeyMismatchError",
    "open_service",
]


class KmsService(CryptoOperations, RotationOperations, AliasAndPolicyOperations):
    """A KMS-compatible key service over a :class:`~enclave_kms.store.Store`.

    Args:
        store: where keys, material (wrapped under the root key), aliases and audit live.
        region: the region in key ARNs.
        account_id: the 12-digit account in key ARNs (and whose principals may create keys).
        verifier: verifies Recipient attestation documents (AWS Nitro root by default in
            :func:`open_service`; test roots only by explicit configuration).
        clock: returns the current aware datetime (key dates, lazy deletion and rotation,
            attestation "now").
        randbytes: randomness for data keys, key ids, nonces and symmetric key material.
        recipient_max_age: reject attestation documents older than this (AWS documents no
            limit; off by default).
        audit: the audit sink (default: the store).
        material_cache_size: how many decrypted backing-key versions to keep in memory.

    Raises:
        ValueError: ``account_id`` is not 12 digits.
    """

    def __init__(
        self,
        store: Store,
        *,
        region: str,
        account_id: str,
        verifier: Verifier,
        clock: Clock = _utc_now,
        randbytes: Callable[[int], bytes] = os.urandom,
        recipient_max_age: timedelta | None = None,
        audit: AuditSink | None = None,
        material_cache_size: int = 1024,
    ) -> None:
        super().__init__(
            store,
            region=region,
            account_id=account_id,
            verifier=verifier,
            clock=clock,
            randbytes=randbytes,
            recipient_max_age=recipient_max_age,
            audit=audit,
            material_cache_size=material_cache_size,
        )

    def query_audit(
        self, *, since: datetime | None = None, key_arn: str | None = None, limit: int = 100
    ) -> Sequence[AuditRecord]:
        """Audit records from the store (oldest first), for the ``enclave-kms audit`` CLI.

        Args:
            since: only records at or after this time.
            key_arn: only records about this key.
            limit: at most this many records.
        """
        return self._store.query_audit(since=since, key_arn=key_arn, limit=limit)


def open_service(
    data_dir: Path | str,
    *,
    region: str,
    account_id: str,
    trusted_roots: Iterable[x509.Certificate] | None = None,
    root_key: bytes | None = None,
    root_key_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    clock: Clock = _utc_now,
    recipient_max_age: timedelta | None = None,
) -> KmsService:
    """Open the embedded service on a data directory (SQLite store + root key).

    Args:
        data_dir: holds ``enclave-kms.sqlite3`` and, unless supplied, ``root.key`` (0600).
        region: the region in key ARNs.
        account_id: the 12-digit account in key ARNs.
        trusted_roots: attestation trust anchors (default: the AWS Nitro root only).
        root_key: the 32-byte root key (else ``ENCLAVE_KMS_ROOT_KEY``, else
            ``root_key_file`` / ``ENCLAVE_KMS_ROOT_KEY_FILE``, else ``<data_dir>/root.key``).
        root_key_file: a file holding the root key.
        environ: the environment to read the root key from (default ``os.environ``).
        clock: the service clock.
        recipient_max_age: the optional attestation max age.

    Returns:
        The service; call ``close()`` when done.

    Raises:
        RootKeyMismatchError: the root key is not the one the data directory was created with.
        RootKeyError: a configured root key is unreadable or malformed.
        SchemaVersionError: the store file has an unknown schema version.
    """
    from enclave_kms.store.sqlite import SqliteStore

    directory = Path(data_dir)
    root = load_root_key(directory, key=root_key, key_file=root_key_file, environ=environ)
    store = SqliteStore.in_directory(directory, root)
    return KmsService(
        store,
        region=region,
        account_id=account_id,
        verifier=Verifier(trusted_roots=trusted_roots, clock=clock),
        clock=clock,
        recipient_max_age=recipient_max_age,
    )
