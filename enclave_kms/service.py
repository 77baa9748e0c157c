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

Several processes on one store (uvicorn workers on one SQLite file, or replicas on one
PostgreSQL database) are supported; see :class:`KmsService` for what each one caches and how
stale a cached answer can be.

Not implemented: grants, imported key material, custom key stores, multi-Region keys and the
SM2, Ed25519, ML-DSA and ML-KEM key specs; they answer UnsupportedOperationException or are
absent from :data:`~enclave_kms.model.OPERATIONS`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509

from attestation import Verifier
from enclave_kms._rootkey import (
    ROOT_KEY_ENV,
    ROOT_KEY_FILE_ENV,
    RootKeyError,
    RootKeyMismatchError,
    load_root_key,
)
from enclave_kms._service_aliases import AliasAndPolicyOperations
from enclave_kms._service_core import DEFAULT_CACHE_POLL_INTERVAL, Clock, _utc_now
from enclave_kms._service_crypto import CryptoOperations
from enclave_kms._service_rotation import RotationOperations
from enclave_kms._service_signing import SigningOperations
from enclave_kms._service_tags import TagOperations
from enclave_kms.audit import AuditRecord
from enclave_kms.store import Store, StoreError
from enclave_kms.store._integrity import SealReport

__all__ = [
    "DEFAULT_CACHE_POLL_INTERVAL",
    "KmsService",
    "RootKeyError",
    "RootKeyMismatchError",
    "describe_store",
    "is_postgres_url",
    "open_service",
    "seal_store_records",
]


class KmsService(
    CryptoOperations,
    SigningOperations,
    RotationOperations,
    AliasAndPolicyOperations,
    TagOperations,
):
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
        recipient_reject_debug: refuse Recipient documents from debug-mode enclaves (PCR0..2
            all zero), whose memory the parent can read. Off by default, as AWS KMS accepts
            them (key policies pinning PCR0 refuse them anyway).
        recipient_max_age: reject attestation documents older than this (AWS documents no
            limit; off by default).
        audit: the audit sink (default: the store).
        material_cache_size: how many decrypted backing-key versions to keep in memory.
        cache_poll_interval: seconds between reads of the store's change counter (below).
        monotonic: the clock that paces those reads (a parameter so tests can drive it).

    Caches and consistency across processes and replicas:

    * **Exact (read through on every call)**: every cryptographic operation (Encrypt,
      Decrypt, ReEncrypt, GenerateDataKey*, GenerateDataKeyPair*, DeriveSharedSecret,
      GetPublicKey, Sign, Verify, GenerateMac, VerifyMac) and every change reads the key
      record, with its state, policy and current version, from the store. A DisableKey,
      ScheduleKeyDeletion, PutKeyPolicy or rotation committed by another replica is honoured
      by the next call that starts after it. When the backing material is not cached, it is
      read together with the key's state in one snapshot (``get_key_with_material``) and the
      state is checked again. On a store with ``append_audit_guarded`` (both built-in
      stores), Encrypt, Decrypt, ReEncrypt, GenerateDataKey(WithoutPlaintext), Sign, Verify,
      GenerateMac and VerifyMac may instead decide on a cached Enabled record and write
      their audit record in one statement that checks the key's state, policy and current
      version are still those; if not, nothing is recorded and the call runs again on the
      store's state (:mod:`enclave_kms._service_context`), so the guarantee is the same with
      one round trip per call instead of two. The HTTP server holds that record back
      (:meth:`call_holding_audit`) and has the store's group-committing writer commit it with
      other requests' records, re-running the call the same way if a key changed.
    * **Never stale**: backing material per (key, version) never changes, and parsed
      policies are cached by their text, so neither needs invalidation.
    * **Bounded-stale**: alias targets (for every operation that accepts an alias) and the
      key record behind DescribeKey, GetKeyPolicy, ListKeyPolicies, GetKeyRotationStatus,
      ListKeyRotations and ListResourceTags come from a per-process cache. Every backend
      moves a change counter in the same transaction as any change to a key, its policy,
      tags or aliases; the cache reads it at most every ``cache_poll_interval`` seconds and
      drops everything when it moved. A change committed by another process is therefore
      seen within ``cache_poll_interval`` plus one store round trip (about 1 s by default).
      Changes made through this process are seen at once.

    Raises:
        ValueError: ``account_id`` is not 12 digits, or a negative ``cache_poll_interval``.
    """

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


def is_postgres_url(url: str | None) -> bool:
    """Whether a store URL selects the PostgreSQL store (``postgresql://`` or ``postgres://``)."""
    return url is not None and url.startswith(("postgresql://", "postgres://"))


def describe_store(data_dir: Path | str, store_url: str | None = None) -> str:
    """Where the service keeps its keys, for banners and messages (never a password)."""
    if is_postgres_url(store_url):
        from enclave_kms.store._pg_schema import describe_url

        return describe_url(str(store_url))
    if store_url:
        return "an unsupported store URL"
    from enclave_kms.store.sqlite import DB_FILE_NAME

    return f"SQLite {Path(data_dir) / DB_FILE_NAME}"


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
    recipient_reject_debug: bool = False,
    store_url: str | None = None,
    cache_poll_interval: float = DEFAULT_CACHE_POLL_INTERVAL,
) -> KmsService:
    """Open the service on the embedded SQLite store, or on a shared PostgreSQL store.

    Args:
        data_dir: holds ``enclave-kms.sqlite3`` and, unless supplied, ``root.key`` (0600).
            Unused by a PostgreSQL store.
        region: the region in key ARNs.
        account_id: the 12-digit account in key ARNs.
        trusted_roots: attestation trust anchors (default: the AWS Nitro root only).
        root_key: the 32-byte root key (else ``ENCLAVE_KMS_ROOT_KEY``, else
            ``root_key_file`` / ``ENCLAVE_KMS_ROOT_KEY_FILE``, else, for SQLite only,
            ``<data_dir>/root.key``, generated on first start).
        root_key_file: a file holding the root key.
        environ: the environment to read the root key from (default ``os.environ``).
        clock: the service clock.
        recipient_max_age: the optional attestation max age.
        recipient_reject_debug: refuse debug-mode enclaves' Recipient documents.
        store_url: ``postgresql://…`` (or ``postgres://…``) selects the PostgreSQL store,
            whose schema must have been created with ``enclave-kms migrate --store URL`` and
            whose root key must be supplied (replicas share one database, so they must share
            one key; none is generated). ``None`` selects SQLite under ``data_dir``.
        cache_poll_interval: how often (seconds) the caches ask the store whether anything
            changed; see :class:`KmsService`.

    Returns:
        The service; call ``close()`` when done.

    Raises:
        RootKeyMismatchError: the root key is not the one the store was created with.
        RootKeyError: a configured root key is unreadable or malformed, or a PostgreSQL
            store was chosen without one.
        SchemaVersionError: the store has no schema yet ("run enclave-kms migrate"), an
            older one, or an unknown (newer) one.
        StoreError: the store URL is not supported or the database cannot be reached.
    """
    store: Store
    directory = Path(data_dir)
    if is_postgres_url(store_url):
        root = load_root_key(
            None, key=root_key, key_file=root_key_file, environ=environ, generate=False
        )
        # Imported only here: the embedded store must work without psycopg installed.
        try:
            from enclave_kms.store.postgres import open_store
        except ModuleNotFoundError as exc:
            root.close()
            raise StoreError(
                f"the PostgreSQL store needs {exc.name}; install enclave-kms[postgres]"
            ) from None
        try:
            store = open_store(str(store_url), root)
        except BaseException:
            root.close()
            raise
    elif store_url:
        # Never echo the URL: it may carry a password.
        raise StoreError("the store URL must start with postgresql:// or postgres://")
    else:
        from enclave_kms.store.sqlite import SqliteStore

        root = load_root_key(directory, key=root_key, key_file=root_key_file, environ=environ)
        store = SqliteStore.in_directory(directory, root)
    return KmsService(
        store,
        region=region,
        account_id=account_id,
        verifier=Verifier(trusted_roots=trusted_roots, clock=clock),
        clock=clock,
        recipient_max_age=recipient_max_age,
        recipient_reject_debug=recipient_reject_debug,
        cache_poll_interval=cache_poll_interval,
    )


def seal_store_records(
    data_dir: Path,
    *,
    store_url: str | None = None,
    confirm: str | None,
    environ: Mapping[str, str] | None = None,
) -> SealReport:
    """List, and with ``confirm`` (the listing's digest) seal, the records of a store written
    before record integrity.

    The operator's one-time step (``enclave-kms seal-records``): a store that holds unsealed
    key or alias records refuses to open until then (see :mod:`enclave_kms.store._integrity`).
    The root key comes from the same places as for :func:`open_service`; none is generated.

    Raises:
        RootKeyError: no root key, or not the store's.
        StoreError: no store there, or it cannot be opened.
        RecordIntegrityError: the records cannot be sealed (see
            :func:`enclave_kms.store._integrity.plan_seal`): tampering, or ``confirm`` is not
            the digest of the records as they are now.
    """
    directory = Path(data_dir)
    if is_postgres_url(store_url):
        root = load_root_key(None, environ=environ, generate=False)
        from enclave_kms.store.postgres import open_store

        store: Any = open_store(str(store_url), root, allow_unsealed=True)
    elif store_url:
        raise StoreError("the store URL must start with postgresql:// or postgres://")
    else:
        from enclave_kms.store.sqlite import DB_FILE_NAME, SqliteStore

        if not (directory / DB_FILE_NAME).exists():
            raise StoreError(f"there is no store in {directory}")
        env = os.environ if environ is None else environ
        if not (directory / "root.key").exists() and not (
            ROOT_KEY_ENV in env or ROOT_KEY_FILE_ENV in env
        ):
            raise RootKeyError(f"no root key for the store in {directory}")
        root = load_root_key(directory, environ=environ)
        store = SqliteStore.in_directory(directory, root, allow_unsealed=True)
    try:
        report: SealReport = store.seal_existing_records(confirm=confirm)
        return report
    finally:
        store.close()
