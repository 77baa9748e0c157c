"""Wiring for ``enclave-kms serve``: credentials on first start, the service, the app factory.

:func:`app_from_environment` is the uvicorn factory (``--workers N``): each worker process builds
its own app from the ``ENCLAVE_KMS_*`` environment that the parent exported, and opens its own
connections to the store: the shared SQLite file (WAL mode and a busy timeout make that safe)
or the shared PostgreSQL database (``store_url``), exactly as separate replicas would.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography.x509 import Certificate
from fastapi import FastAPI

from enclave_kms.errors import ValidationException
from enclave_kms.server._credentials import (
    Credential,
    CredentialSet,
    generate_root_credential,
    load_credentials_file,
    write_credentials_file,
)
from enclave_kms.server.app import create_app
from enclave_kms.server.settings import ServerSettings, load_settings

__all__ = [
    "app_from_environment",
    "build_app",
    "ensure_credentials",
    "export_settings",
    "load_trust_roots",
    "open_configured_service",
]


def _snippet(cred: Credential, settings: ServerSettings, path: Path, *, show_secret: bool) -> str:
    endpoint = f"http://{settings.host}:{settings.port}"
    if not show_secret:
        # Standard output is a log (systemd, a container): the secret would stay in it.
        return (
            f"Created access key {cred.access_key_id} for {cred.principal_arn} in {path} "
            "(mode 0600). The secret is in that file only: it is printed once, and only to a "
            "terminal.\n"
        )
    return (
        f"Created an access key for {cred.principal_arn} in {path} (mode 0600).\n"
        "It is shown once; it stays in that file.\n\n"
        f"  export AWS_ACCESS_KEY_ID={cred.access_key_id}\n"
        f"  export AWS_SECRET_ACCESS_KEY={cred.secret_access_key}\n"
        f"  export AWS_DEFAULT_REGION={settings.region}\n"
        f"  aws kms create-key --endpoint-url {endpoint}\n\n"
        "  import boto3\n"
        f'  kms = boto3.client("kms", endpoint_url="{endpoint}", region_name="{settings.region}",\n'
        f'                     aws_access_key_id="{cred.access_key_id}",\n'
        f'                     aws_secret_access_key="{cred.secret_access_key}")\n'
    )


def ensure_credentials(
    settings: ServerSettings,
    *,
    announce: Callable[[str], None] = print,
    show_secret: bool | None = None,
) -> CredentialSet:
    """Load the credentials file, creating a root access key on first start.

    A key is generated only when no credentials file was configured and the default one
    (``data_dir/credentials.json``) does not exist yet; ``announce`` shows it once. The secret
    is shown only when ``show_secret`` (default: standard output is a terminal), so that it
    never lands in a service log; otherwise the message names the file that holds it.

    Raises:
        ValidationException: a configured credentials file is missing or malformed.
    """
    path = settings.resolved_credentials_file
    if path.exists() or settings.credentials_file is not None:
        return load_credentials_file(path, account_id=settings.account_id)
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    cred = generate_root_credential(settings.account_id)
    try:
        write_credentials_file(path, [cred])
    except FileExistsError:  # another process won the race: use its key
        return load_credentials_file(path, account_id=settings.account_id)
    if show_secret is None:
        show_secret = sys.stdout.isatty()
    announce(_snippet(cred, settings, path, show_secret=show_secret))
    return CredentialSet([cred])


def load_trust_roots(settings: ServerSettings) -> list[Certificate]:
    """The AWS Nitro root and the configured extra roots, each read and checked.

    Raises:
        ValidationException: a trust-root file cannot be read or is not a PEM certificate.
    """
    from attestation.errors import AttestationError
    from attestation.roots import aws_nitro_root, load_pem_root

    roots = [aws_nitro_root()]
    for pem in settings.trust_roots:
        try:
            roots.append(load_pem_root(pem.read_bytes()))
        except OSError as exc:
            raise ValidationException(f"cannot read trust root {pem}: {exc.strerror}") from None
        except (AttestationError, ValueError):
            raise ValidationException(f"not a PEM root certificate: {pem}") from None
    return roots


def open_configured_service(settings: ServerSettings) -> Any:
    """Open the core service on the configured store with the configured trust roots.

    Raises:
        ValidationException: a trust-root file cannot be read.
        RootKeyError: the root key is missing (PostgreSQL), malformed or not the store's.
        StoreError: the store cannot be opened (for PostgreSQL: unreachable, or a missing or
            old schema, with a message telling the operator to run ``enclave-kms migrate``).
    """
    from enclave_kms.service import open_service  # the core; imported when serving

    roots = load_trust_roots(settings)
    kwargs: dict[str, Any] = {}
    if settings.recipient_reject_debug:
        kwargs["recipient_reject_debug"] = True
    if settings.recipient_max_age_seconds is not None:
        kwargs["recipient_max_age"] = timedelta(seconds=settings.recipient_max_age_seconds)
    if settings.store_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return open_service(
        settings.data_dir,
        region=settings.region,
        account_id=settings.account_id,
        trusted_roots=roots,
        store_url=settings.store_url,
        cache_poll_interval=settings.cache_poll_interval,
        **kwargs,
    )


def build_app(settings: ServerSettings, credentials: CredentialSet | None) -> FastAPI:
    """Open the service and wrap it in the HTTP app (closing the service on shutdown).

    Raises:
        ValidationException: bad settings, trust roots or credentials.
    """
    service = open_configured_service(settings)
    close = getattr(service, "close", None)
    return create_app(
        service,
        settings,
        credentials=credentials,
        on_shutdown=close if callable(close) else None,
    )


def export_settings(settings: ServerSettings) -> None:
    """Put the resolved settings into ``ENCLAVE_KMS_*`` for worker processes to read."""
    for name, value in settings.model_dump(mode="json").items():
        key = f"ENCLAVE_KMS_{name.upper()}"
        if value is None:
            os.environ.pop(key, None)
        elif isinstance(value, list | dict):
            os.environ[key] = json.dumps(value)
        else:
            os.environ[key] = str(value)


def app_from_environment() -> FastAPI:
    """uvicorn factory for worker processes: settings from ``ENCLAVE_KMS_*`` only.

    Raises:
        ValidationException: bad settings or credentials.
    """
    settings = load_settings()
    credentials = None
    if not settings.insecure_accept_any_credentials:
        credentials = load_credentials_file(
            settings.resolved_credentials_file, account_id=settings.account_id
        )
    return build_app(settings, credentials)
