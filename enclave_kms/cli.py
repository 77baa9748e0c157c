"""The ``enclave-kms`` command: ``serve``, ``audit``, and subcommands other modules register.

This is the one place that turns errors into messages and exit codes: a user never sees a
traceback. Exit codes: 0 success, 1 a KMS or configuration error, 2 bad usage (argparse),
130 interrupted.

Other packages add subcommands by exposing ``register(subparsers)`` in a module listed in
:data:`SUBCOMMAND_MODULES`; they are imported when the parser is built, so a module that
fails to import fails loudly instead of its subcommand silently disappearing. Each leaf parser
sets ``func`` (or ``handler``) to a callable ``(args: argparse.Namespace) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import ipaddress
import json
import logging
import ssl
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from enclave_kms._rootkey import RootKeyError
from enclave_kms.errors import KmsError, ValidationException
from enclave_kms.store import StoreError

__all__ = ["SUBCOMMAND_MODULES", "main"]

SUBCOMMAND_MODULES: tuple[str, ...] = (
    "enclave_kms.proxy.cli",
    "enclave_kms.enclave.cli",
    "enclave_kms.store._pg_cli",
    "enclave_kms._demo.cli",
)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML settings file")
    parser.add_argument("--data-dir", type=Path, help="store, credentials and audit directory")
    parser.add_argument("--region", help="region for ARNs and the SigV4 scope (us-east-1)")
    parser.add_argument("--account-id", help="12-digit account that owns the keys")
    parser.add_argument(
        "--store",
        dest="store_url",
        metavar="URL",
        help="postgresql://user@host:port/db: use this shared PostgreSQL store (migrated with "
        "`enclave-kms migrate --store URL`; the root key must come from "
        "ENCLAVE_KMS_ROOT_KEY_FILE or ENCLAVE_KMS_ROOT_KEY) instead of SQLite in the data "
        "directory; default $ENCLAVE_KMS_STORE_URL. Prefer a libpq password file or "
        "PGPASSWORD to a password in the URL",
    )


def _serve_parser(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the KMS-compatible HTTP server")
    _add_common(p)
    p.add_argument("--host", help="listen address (127.0.0.1)")
    p.add_argument("--port", type=int, help="listen port (4599)")
    p.add_argument("--workers", type=int, help="worker processes (1)")
    p.add_argument(
        "--trust-root",
        dest="trust_roots",
        type=Path,
        action="append",
        help="extra PEM root for attestation documents (repeatable; the AWS root is always "
        "trusted)",
    )
    p.add_argument(
        "--trusted-proxy",
        dest="trusted_proxies",
        action="append",
        metavar="ADDRESS_OR_CIDR",
        help="a load balancer or proxy whose X-Forwarded-For gives aws:SourceIp (repeatable; "
        "by default no header is trusted and aws:SourceIp is the TCP peer)",
    )
    p.add_argument(
        "--tls-cert",
        dest="tls_cert_file",
        type=Path,
        metavar="PEM",
        help="serve HTTPS with this certificate chain (with --tls-key); requests over it have "
        "aws:SecureTransport true",
    )
    p.add_argument(
        "--tls-key", dest="tls_key_file", type=Path, metavar="PEM", help="the certificate's key"
    )
    p.add_argument("--credentials-file", type=Path, help="access keys file (JSON)")
    p.add_argument("--max-body-bytes", type=int, help="request body limit (393216)")
    p.add_argument("--recipient-max-age-seconds", type=float, help="max attestation age")
    p.add_argument(
        "--recipient-reject-debug",
        action="store_true",
        default=None,
        help="refuse Recipient documents from debug-mode enclaves (PCR0..2 all zero)",
    )
    p.add_argument("--log-level", help="debug, info, warning, error")
    p.add_argument(
        "--insecure-accept-any-credentials",
        action="store_true",
        default=None,
        help="UNSAFE, throwaway test runs only: accept any SigV4 header without checking it",
    )
    p.set_defaults(func=_serve)


def _audit_parser(sub: Any) -> None:
    p = sub.add_parser("audit", help="print audit records")
    _add_common(p)
    p.add_argument("--since", help="only records at or after this ISO-8601 time")
    p.add_argument("--key", help="only records for this key id or ARN")
    p.add_argument("--limit", type=int, default=1000, help="at most this many records (1000)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=_audit)


def _seal_parser(sub: Any) -> None:
    p = sub.add_parser(
        "seal-records",
        help="seal the key and alias records of a store written before record integrity",
        description="A store written by a version without record integrity does not open "
        "until its key and alias records are sealed under the root key, once. Without "
        "--confirm this lists them, one JSON object per line with every column the seal "
        "vouches for, and a digest of exactly those records; check them, then run again with "
        "--confirm DIGEST, which seals them only if they are still exactly what was listed. "
        "Listing upgrades a SQLite file's schema (that is not undone) but seals nothing. If "
        "this store was ever sealed before, a request to seal it means tampering: restore it "
        "from a backup instead.",
    )
    _add_common(p)
    p.add_argument("--confirm", metavar="DIGEST", help="seal the records listed with this digest")
    p.set_defaults(func=_seal)


_SETTING_FLAGS = (
    "host", "port", "workers", "data_dir", "store_url", "region", "account_id", "trust_roots",
    "credentials_file", "max_body_bytes", "recipient_max_age_seconds", "recipient_reject_debug",
    "log_level", "trusted_proxies", "tls_cert_file", "tls_key_file",
    "insecure_accept_any_credentials",
)  # fmt: skip


def _settings(args: argparse.Namespace) -> Any:
    from enclave_kms.server.settings import load_settings

    overrides = {name: getattr(args, name, None) for name in _SETTING_FLAGS}
    return load_settings(overrides, config_file=args.config)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _tls_options(settings: Any) -> dict[str, str]:
    """uvicorn's TLS options, after checking that the certificate and key load together.

    Checked here so that a wrong path, a key that does not match or an unreadable file is one
    clear line before anything starts, not a traceback from inside uvicorn.
    """
    if settings.tls_cert_file is None:
        return {}
    cert, key = settings.tls_cert_file, settings.tls_key_file
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except OSError as exc:  # ssl.SSLError included
        # The reason names a file or an OpenSSL error class, never key material.
        reason = exc.strerror or str(exc)
        raise ValidationException(
            f"--tls-cert/--tls-key: cannot serve HTTPS with {cert} and {key}: {reason}"
        ) from None
    return {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from enclave_kms.server import _factory
    from enclave_kms.service import describe_store

    settings = _settings(args)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s %(message)s"
    )
    credentials = None
    # Before any credential is generated and shown, like every check that can fail here.
    tls = _tls_options(settings)
    if settings.insecure_accept_any_credentials and not _is_loopback(settings.host):
        # Anyone who can reach the port would be the account root: refuse beyond loopback.
        raise ValidationException(
            "--insecure-accept-any-credentials is for throwaway local runs: it is refused "
            f"unless the server listens on a loopback address (not {settings.host!r})"
        )
    if settings.insecure_accept_any_credentials:
        print(
            "WARNING: --insecure-accept-any-credentials: signatures are NOT checked. "
            "Never use this outside a throwaway test run.",
            file=sys.stderr,
        )
    else:
        # Check what can be checked before a secret is generated and shown: a bad trust root
        # must not leave a fresh credential behind in a failed start.
        _factory.load_trust_roots(settings)
        credentials = _factory.ensure_credentials(settings)
    endpoint = f"{'https' if tls else 'http'}://{settings.host}:{settings.port}"
    print(
        f"enclave-kms: AWS KMS JSON API at {endpoint} (region {settings.region}, account "
        f"{settings.account_id}); keys in {describe_store(settings.data_dir, settings.store_url)}; "
        f"access keys in {settings.resolved_credentials_file}.\n"
        f"  AWS CLI: aws kms list-keys --endpoint-url {endpoint}\n"
        f'  boto3:   boto3.client("kms", endpoint_url="{endpoint}", '
        f'region_name="{settings.region}")',
        file=sys.stderr,
        flush=True,
    )
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level.lower(),
        "access_log": False,  # one line per request costs more than the request itself
        # Beyond this many connections per worker uvicorn answers 503 instead of queueing.
        "limit_concurrency": settings.max_connections,
        # X-Forwarded-For decides aws:SourceIp, so it is believed only from the proxies the
        # operator named (uvicorn's own default trusts any local process).
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": list(settings.trusted_proxies) or None,
        **tls,
    }
    if settings.workers > 1:
        # Create the root key and the store schema once, here, before the workers start:
        # workers opening a fresh data directory at the same moment would race to create them.
        # (For PostgreSQL this checks the schema and root key once, so a bad start fails here.)
        _factory.open_configured_service(settings).close()
        _factory.export_settings(settings)
        uvicorn.run(
            "enclave_kms.server._factory:app_from_environment",
            factory=True,
            workers=settings.workers,
            **common,
        )
    else:
        uvicorn.run(_factory.build_app(settings, credentials), **common)
    return 0


def _seal(args: argparse.Namespace) -> int:
    from enclave_kms.service import seal_store_records

    settings = _settings(args)
    report = seal_store_records(
        settings.data_dir, store_url=settings.store_url, confirm=args.confirm
    )
    # One JSON object per record: every value escaped, so text planted in the database
    # (control characters, terminal escapes) cannot rewrite what the operator sees.
    for record in report.keys:
        print(json.dumps({"key": dict(record)}, sort_keys=True))
    for record in report.aliases:
        print(json.dumps({"alias": dict(record)}, sort_keys=True))
    counts = f"{len(report.keys)} key and {len(report.aliases)} alias records"
    if report.was_sealed:
        print(f"already sealed: all {report.already_sealed} records carry a valid MAC")
    elif report.sealed:
        print(f"sealed {counts}; the store opens again")
    else:
        print(
            f"{counts} without a MAC ({report.already_sealed} already sealed). Check every "
            f"line above, then run again with --confirm {report.digest}"
        )
    return 0


def _parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationException(f"--since: not an ISO-8601 time: {value!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _audit(args: argparse.Namespace) -> int:
    from enclave_kms.server._factory import open_configured_service

    settings = _settings(args)
    since = _parse_since(args.since)
    service = open_configured_service(settings)
    try:
        records = service.query_audit(
            since=since, key_arn=_key_arn(args.key, settings), limit=args.limit
        )
    finally:
        close = getattr(service, "close", None)
        if callable(close):
            close()
    for rec in records:
        row = _audit_row(rec)
        if args.json:
            print(json.dumps(row, sort_keys=True))
        else:
            print(
                f"{row['time']}  {row['operation']:<28} {row['outcome']:<28} "
                f"{row.get('key_arn') or '-'}  {row['principal_arn']}  "
                f"{row.get('source_ip') or '-'}"
            )
    return 0


def _key_arn(key: str | None, settings: Any) -> str | None:
    """A key id or key ARN as the key ARN the audit records carry."""
    if key is None or key.startswith("arn:"):
        return key
    return f"arn:aws:kms:{settings.region}:{settings.account_id}:key/{key}"


def _audit_row(rec: Any) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name in getattr(type(rec), "__dataclass_fields__", {}):
        value = getattr(rec, name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, tuple):
            value = list(value)
        if value is not None and value != []:
            row[name] = value
    return row


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="enclave-kms", description="KMS-compatible data-key service with Nitro Recipient"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _serve_parser(sub)
    _audit_parser(sub)
    _seal_parser(sub)
    for module_name in SUBCOMMAND_MODULES:
        importlib.import_module(module_name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "func", None) or getattr(args, "handler", None)
    if handler is None:
        parser.error(f"{args.command}: no subcommand given")
    try:
        return int(handler(args))
    except KmsError as exc:
        print(f"enclave-kms {args.command}: {exc.message}", file=sys.stderr)
        return 1
    except (RootKeyError, StoreError) as exc:
        # Both carry operator-facing messages (paths, reasons), never key material.
        print(f"enclave-kms {args.command}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"enclave-kms {args.command}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
