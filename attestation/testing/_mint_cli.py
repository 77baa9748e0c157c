"""``nitro-attest mint``: write a minted attestation document and the test PKI that signed it.

The PKI lives in ``--pki-dir``: created (from ``--seed``) when the directory is empty or absent,
reused otherwise, so successive documents chain to the same ``root.pem``. CA certificates made
here are valid for 30 years from 2020-01-01, so documents of any date in that span verify.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from attestation.testing.mint import Variant, mint_document
from attestation.testing.pki import DEFAULT_SEED, LONG_LIFETIMES, TestPki, seed_bytes

__all__ = ["CLI_PKI_VALID_FROM", "register", "run"]

CLI_PKI_VALID_FROM = datetime(2020, 1, 1, tzinfo=UTC)


class _UsageError(Exception):
    pass


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``mint`` subcommand (its handler returns 0 on success, 2 on a usage error)."""
    p = subparsers.add_parser(
        "mint",
        help="mint a test attestation document (test PKI: DO NOT TRUST)",
        description="Write an attestation document in the genuine Nitro format, signed by a "
        "test PKI kept in --pki-dir (root.pem, chain.pem). Verify it by trusting root.pem.",
    )
    p.add_argument("--out", required=True, help="file to write the COSE_Sign1 document to")
    p.add_argument("--pki-dir", required=True, help="test PKI directory (created if empty)")
    p.add_argument("--seed", type=int, help=f"PKI seed when creating it (default {DEFAULT_SEED})")
    p.add_argument(
        "--public-key", metavar="SPKI_DER_FILE", help="file whose bytes go in public_key"
    )
    p.add_argument(
        "--pcr", action="append", default=[], metavar="IDX=HEX", help="set a PCR (repeatable)"
    )
    p.add_argument("--debug", action="store_true", help="debug mode: PCR0..2 all zero")
    p.add_argument("--nonce", metavar="HEX", help="nonce bytes, hex")
    p.add_argument("--user-data", metavar="HEX", help="user_data bytes, hex")
    p.add_argument(
        "--timestamp", metavar="ISO|ms", help="document time: ISO 8601 or epoch ms (default now)"
    )
    p.add_argument(
        "--variant", choices=[v.value for v in Variant], help="deliberately break the document"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handle ``mint``: returns 0 when the document is written, 2 on a usage error."""
    try:
        pki = _pki(Path(args.pki_dir), args.seed)
        public_key = Path(args.public_key).read_bytes() if args.public_key else None
        pcrs = _pcrs(args.pcr) if args.pcr else None
        document = mint_document(
            pki,
            pcrs=pcrs,
            public_key=public_key,
            user_data=_hex(args.user_data, "--user-data"),
            nonce=_hex(args.nonce, "--nonce"),
            timestamp=_timestamp(args.timestamp),
            debug=args.debug,
            variant=args.variant,
        )
        Path(args.out).write_bytes(document)
    except (_UsageError, OSError, ValueError) as exc:
        print(f"nitro-attest mint: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} ({len(document)} bytes); trust {Path(args.pki_dir) / 'root.pem'}")
    return 0


def _pki(directory: Path, seed: int | None) -> TestPki:
    if directory.is_dir() and any(directory.iterdir()):
        if not (directory / "pki.json").exists():
            raise _UsageError(f"{directory} is not empty and holds no test PKI (pki.json)")
        pki = TestPki.load(directory)
        if seed is not None and pki.seed != seed_bytes(seed):
            raise _UsageError(f"{directory} holds a PKI made from another seed")
        return pki
    pki = TestPki.create(
        DEFAULT_SEED if seed is None else seed,
        valid_from=CLI_PKI_VALID_FROM,
        lifetimes=LONG_LIFETIMES,
    )
    pki.save(directory)
    return pki


def _hex(value: str | None, option: str) -> bytes | None:
    if value is None:
        return None
    try:
        return bytes.fromhex(value)
    except ValueError as exc:
        raise _UsageError(f"{option}: not hex") from exc


def _pcrs(items: list[str]) -> dict[int, bytes]:
    pcrs: dict[int, bytes] = {}
    for item in items:
        index, sep, value = item.partition("=")
        if not sep or not index.isdigit() or int(index) > 31:
            raise _UsageError(f"--pcr {item!r}: expected IDX=HEX with IDX in 0..31")
        data = _hex(value, f"--pcr {index}")
        if data is None or len(data) != 48:
            raise _UsageError(f"--pcr {index}: a SHA-384 PCR is 48 bytes (96 hex digits)")
        pcrs[int(index)] = data
    return pcrs


def _timestamp(value: str | None) -> datetime | int | None:
    if value is None:
        return None
    if value.isdigit():
        return int(value)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise _UsageError(f"--timestamp {value!r}: not ISO 8601 or epoch milliseconds") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
