"""Server settings: defaults < TOML file < ``ENCLAVE_KMS_*`` environment < command-line flags.

Nothing is read at import time: :func:`load_settings` builds a :class:`ServerSettings` when the
server starts, so tests and several apps in one process each get their own.

Example TOML (``enclave-kms serve --config kms.toml``)::

    host = "127.0.0.1"
    port = 4599
    data_dir = "/var/lib/enclave-kms"
    region = "eu-west-1"
    trust_roots = ["/etc/enclave-kms/test-root.pem"]
    # several replicas on one shared database (run `enclave-kms migrate --store URL` first):
    # store_url = "postgresql://kms@db.internal:5432/kms?sslmode=verify-full"
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from enclave_kms.errors import ValidationException

__all__ = ["DEFAULT_PORT", "ServerSettings", "load_settings"]

DEFAULT_PORT = 4599
_TOML_FILE: ContextVar[Path | None] = ContextVar("_TOML_FILE", default=None)
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")


class ServerSettings(BaseSettings):
    """Everything ``enclave-kms serve`` can be told.

    Attributes:
        host: address to listen on (loopback by default: exposing a KMS is a decision).
        port: TCP port.
        data_dir: where the store, the credentials file and the audit log live (with a
            ``store_url``, only the credentials file).
        store_url: ``postgresql://user:password@host:port/db`` (or ``postgres://``) selects
            the shared PostgreSQL store; unset selects the embedded SQLite store in
            ``data_dir``. Kept out of the repr; messages show only host, port and database
            (prefer a libpq password file or ``PGPASSWORD`` to a password in the URL).
        cache_poll_interval: seconds between the service's checks of the store's change
            counter; a change made by another replica is seen within this plus one round
            trip.
        region: the region in key ARNs and the SigV4 credential scope.
        account_id: the 12-digit account that owns the keys.
        trust_roots: extra PEM root certificates for attestation documents (test roots); the
            AWS Nitro root is always trusted.
        credentials_file: the access keys file; ``data_dir/credentials.json`` when unset.
        max_body_bytes: request bodies larger than this are refused (413). 384 KiB: a
            262144-byte attestation document is 349528 bytes in base64 (300 KiB would not
            hold it), plus room for a 4 KiB plaintext and the other members.
        recipient_max_age_seconds: refuse attestation documents older than this (unset: no
            limit, as AWS documents none).
        recipient_reject_debug: refuse Recipient documents from debug-mode enclaves (PCR0..2
            all zero), whose memory the parent can read; off by default, as AWS accepts them.
        body_read_timeout_seconds: a request whose body has not fully arrived by then is
            answered 408 and closed, so a slow or stalled client cannot hold a connection
            (and up to ``max_body_bytes`` of buffer) before it has been authenticated.
        trusted_proxies: addresses or CIDR ranges of load balancers or proxies in front of
            the server. Only from these is ``X-Forwarded-For`` believed (the right-most address
            not in this list becomes ``aws:SourceIp``, as the proxy appends the peer it saw);
            from anyone else, and by default from everyone, ``aws:SourceIp`` is the TCP peer.
        tls_cert_file: PEM certificate chain to serve HTTPS with (with ``tls_key_file``);
            requests over it have ``aws:SecureTransport`` true. Unset: plain HTTP, as for a
            server on loopback or behind a TLS-terminating proxy named in ``trusted_proxies``
            (whose ``X-Forwarded-Proto: https`` then counts as TLS).
        tls_key_file: the PEM private key of ``tls_cert_file`` (keep it 0600).
        max_connections: concurrent connections per worker; beyond it uvicorn answers 503.
        workers: uvicorn worker processes.
        service_in_threadpool: call the service in a worker thread instead of on the event
            loop. Off by default, for both stores: a cryptographic call is short (with
            PostgreSQL one round trip, the audit insert, whose commit does not wait for a
            disk flush), and the thread hop cost about 40% of the throughput with SQLite
            (``bench/server.py``) and about 20% with PostgreSQL (``bench/scale.py``). Turn it
            on for a database far away or with long lock waits; scale out with ``workers``.
        insecure_accept_any_credentials: UNSAFE, for throwaway test runs: accept any
            well-formed SigV4 header without checking the signature.
        insecure_warning_interval: with the unsafe mode on, repeat the warning every N requests.
        log_level: uvicorn and application log level.
    """

    model_config = SettingsConfigDict(env_prefix="ENCLAVE_KMS_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535)
    data_dir: Path = Path(".enclave-kms")
    store_url: str | None = Field(default=None, repr=False)
    cache_poll_interval: float = Field(default=1.0, ge=0, le=3600)
    region: str = "us-east-1"
    account_id: str = "111122223333"
    trust_roots: tuple[Path, ...] = ()
    credentials_file: Path | None = None
    max_body_bytes: int = Field(default=384 * 1024, ge=1024, le=16 * 1024 * 1024)
    recipient_max_age_seconds: float | None = Field(default=None, gt=0)
    recipient_reject_debug: bool = False
    body_read_timeout_seconds: float = Field(default=15.0, gt=0, le=600)
    trusted_proxies: tuple[str, ...] = ()
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    max_connections: int = Field(default=1024, ge=1, le=65536)
    workers: int = Field(default=1, ge=1, le=64)
    service_in_threadpool: bool = False
    insecure_accept_any_credentials: bool = False
    insecure_warning_interval: int = Field(default=1000, ge=1)
    log_level: str = "info"

    @field_validator("account_id")
    @classmethod
    def _account(cls, value: str) -> str:
        if not re.fullmatch(r"\d{12}", value):
            raise ValueError("account_id must be 12 digits")
        return value

    @field_validator("store_url")
    @classmethod
    def _store_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("postgresql://", "postgres://")):
            # The value itself is never echoed: it may carry a password.
            raise ValueError("must start with postgresql:// or postgres://")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"not an IP address or CIDR range: {entry!r}") from None
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> ServerSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file must be given together")
        return self

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not _REGION_RE.match(value):
            raise ValueError(f"not a region name: {value!r}")
        return value

    @property
    def resolved_credentials_file(self) -> Path:
        """The credentials file in use: the configured one or ``data_dir/credentials.json``."""
        return self.credentials_file or self.data_dir / "credentials.json"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Earlier sources win: flags (init kwargs) over environment over the TOML file.
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = _TOML_FILE.get()
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)


def load_settings(
    overrides: Mapping[str, Any] | None = None, *, config_file: Path | None = None
) -> ServerSettings:
    """Build the settings from flags (``overrides``; ``None`` values ignored), env and TOML.

    Raises:
        ValidationException: a value is invalid or the TOML file cannot be read.
    """
    if config_file is not None and not config_file.is_file():
        raise ValidationException(f"config file not found: {config_file}")
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    token = _TOML_FILE.set(config_file)
    try:
        return ServerSettings(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ValidationException(f"invalid settings: {problems}") from None
    except (OSError, ValueError) as exc:
        raise ValidationException(f"cannot read config file {config_file}: {exc}") from None
    finally:
        _TOML_FILE.reset(token)
