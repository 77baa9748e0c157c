"""``nitro-attest``: verify, inspect and report on Nitro attestation documents.

Exit codes: 0 valid, 1 invalid (any :class:`~attestation.errors.AttestationError`), 2 usage or
file errors. No traceback reaches the user. Each subcommand is a ``register(subparsers)``
function that sets ``handler=`` (``args -> exit code``); :func:`build_parser` lists them.
"""

from __future__ import annotations

import argparse
import binascii
import contextlib
import json
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from cryptography import x509

from . import policy as policies
from .document import MAX_DOCUMENT_SIZE, AttestationDocument, parse_document
from .errors import AttestationError
from .roots import aws_nitro_root
from .testing._mint_cli import register as register_mint
from .verifier import At, VerifiedAttestation, Verifier

__all__ = ["build_parser", "main"]

_COSE_FIRST_BYTES: Final = (0x84, 0xD2)  # untagged array(4), or tag 18
_MAX_INPUT: Final = 4 * MAX_DOCUMENT_SIZE  # room for hex (2x) or base64 (4/3) plus whitespace
_BANNER: Final = "NOT VERIFIED: decoded only; nothing shown here is authenticated"


class _FileError(Exception):
    """A file could not be read (exit 2)."""


def _read_input(name: str) -> bytes:
    try:
        if name == "-":
            raw = sys.stdin.buffer.read(_MAX_INPUT + 1)
        else:
            with open(name, "rb") as fh:
                raw = fh.read(_MAX_INPUT + 1)
    except OSError as exc:
        raise _FileError(f"cannot read {name}: {exc.strerror or exc}") from None
    return _decode_text_forms(raw)


def _decode_text_forms(raw: bytes) -> bytes:
    """Accept raw COSE, hex or base64; anything else goes to the verifier as-is (and fails)."""
    if not raw or raw[0] in _COSE_FIRST_BYTES or len(raw) > _MAX_INPUT:
        return raw
    text = b"".join(raw.split())
    candidates: list[bytes] = []
    with contextlib.suppress(UnicodeDecodeError, ValueError):
        candidates.append(bytes.fromhex(text.decode("ascii")))
    for decode in (binascii.a2b_base64, _urlsafe_b64):
        with contextlib.suppress(binascii.Error, ValueError):
            candidates.append(decode(text))
    # Hex is tried first: a hex string is also valid base64, but not the other way round for
    # a document (base64 of 0x84 0x44 starts "hE"). Only a decoding that starts like COSE wins.
    for candidate in candidates:
        if candidate and candidate[0] in _COSE_FIRST_BYTES:
            return candidate
    return raw


def _urlsafe_b64(text: bytes) -> bytes:
    padded = text + b"=" * (-len(text) % 4)
    return binascii.a2b_base64(padded.replace(b"-", b"+").replace(b"_", b"/"), strict_mode=True)


def _b64(value: bytes | None) -> str | None:
    return None if value is None else binascii.b2a_base64(value, newline=False).decode("ascii")


def _document_json(doc: AttestationDocument) -> dict[str, Any]:
    return {
        "module_id": doc.module_id,
        "digest": doc.digest,
        "timestamp": doc.timestamp.isoformat(),
        "debug_mode": doc.is_debug_mode,
        "pcrs": {str(i): v.hex() for i, v in sorted(doc.pcrs.items())},
        "public_key": _b64(doc.public_key),
        "user_data": _b64(doc.user_data),
        "nonce": _b64(doc.nonce),
    }


def _describe(doc: AttestationDocument) -> list[str]:
    lines = [
        f"module_id:  {doc.module_id}",
        f"timestamp:  {doc.timestamp.isoformat()}",
        f"mode:       {'DEBUG (PCR0..2 all zero)' if doc.is_debug_mode else 'production'}",
    ]
    for index, value in sorted(doc.pcrs.items()):
        if any(value):
            lines.append(f"PCR{index:<2}      {value.hex()}")
    for name in ("public_key", "user_data", "nonce"):
        value = getattr(doc, name)
        lines.append(f"{name + ':':<11} {'null' if value is None else f'{len(value)} bytes'}")
    return lines


# ---- argument types (argparse turns ArgumentTypeError into a usage error, exit 2) ----------


def _at_arg(text: str) -> At:
    if text in ("now", "document"):
        return text  # type: ignore[return-value]  # narrowed by the test above
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected now, document or an ISO 8601 time") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("the time must include a timezone (e.g. Z)")
    return value


def _pcr_arg(text: str) -> tuple[int, bytes]:
    index, sep, value = text.partition("=")
    try:
        if not sep or not index.isdigit():
            raise ValueError("expected IDX=HEX")
        return int(index), policies.PCR(int(index), value).value
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _nonce_arg(text: str) -> bytes:
    try:
        return policies.Nonce(bytes.fromhex(text)).expected
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"nonce: {exc}") from None


def _seconds_arg(text: str) -> timedelta:
    try:
        return policies.MaxAge(timedelta(seconds=float(text))).max_age
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError("expected a positive number of seconds") from None


# ---- verify ------------------------------------------------------------------------------


def _load_roots(paths: Sequence[str]) -> list[x509.Certificate]:
    roots = [aws_nitro_root()]
    for path in paths:
        try:
            roots.extend(x509.load_pem_x509_certificates(Path(path).read_bytes()))
        except OSError as exc:
            raise _FileError(f"cannot read {path}: {exc.strerror or exc}") from None
        except ValueError:
            raise _FileError(f"{path} holds no PEM certificate") from None
    return roots


def _build_policy(args: argparse.Namespace) -> policies.Policy:
    parts: list[policies.Policy] = []
    if not args.allow_debug:
        parts.append(policies.RejectDebugMode())
    if args.pcr:
        parts.append(policies.PCRs(dict(args.pcr)))
    if args.nonce is not None:
        parts.append(policies.Nonce(args.nonce))
    if args.max_age is not None:
        parts.append(policies.MaxAge(args.max_age))
    return policies.AllOf(parts) if parts else policies.UnsafeNoOp()


def _verify(args: argparse.Namespace) -> int:
    data = _read_input(args.file)
    verifier = Verifier(trusted_roots=_load_roots(args.root))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", policies.UnsafePolicyWarning)
            result = verifier.verify(data, policy=_build_policy(args), at=args.at)
    except AttestationError as exc:
        if args.json:
            print(json.dumps({"valid": False, "error": type(exc).__name__, "message": str(exc)}))
        else:
            print(f"INVALID: {type(exc).__name__}: {exc}")
        return 1
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    _print_valid(result, as_json=args.json)
    return 0


def _print_valid(result: VerifiedAttestation, *, as_json: bool) -> None:
    if as_json:
        doc = _document_json(result.document)
        out = {"valid": True, **{k: doc[k] for k in ("module_id", "timestamp", "pcrs")}}
        out.update({k: doc[k] for k in ("public_key", "user_data", "nonce")})
        print(json.dumps(out))
        return
    print(f"VALID (chain and signature checked at {result.verified_at.isoformat()})")
    print("\n".join(_describe(result.document)))


def register_verify(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``verify``."""
    p = subparsers.add_parser(
        "verify",
        help="verify a document (exit 0 valid, 1 invalid, 2 usage error)",
        description=(
            "Verify an attestation document: COSE ES384 signature, certificate chain to the "
            "pinned AWS Nitro root, and a policy. Without --pcr/--nonce the policy is "
            "authenticity plus debug-mode rejection, which accepts ANY production enclave image."
        ),
    )
    p.add_argument("file", help="document file (raw COSE, hex or base64); - for stdin")
    p.add_argument(
        "--at",
        type=_at_arg,
        default="now",
        help="verification time: now (default), document (audit mode: the document's own "
        "timestamp), or an ISO 8601 time with timezone",
    )
    p.add_argument(
        "--root",
        action="append",
        default=[],
        metavar="PEM",
        help="extra trusted root(s), added to the AWS root; for test PKIs only",
    )
    p.add_argument("--pcr", action="append", type=_pcr_arg, metavar="IDX=HEX", help="pin a PCR")
    p.add_argument("--nonce", type=_nonce_arg, metavar="HEX", help="expected nonce")
    p.add_argument("--max-age", type=_seconds_arg, metavar="SECONDS", help="maximum age")
    p.add_argument("--allow-debug", action="store_true", help="accept debug-mode enclaves")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_verify)


# ---- inspect -----------------------------------------------------------------------------


def _inspect(args: argparse.Namespace) -> int:
    data = _read_input(args.file)
    print(_BANNER, file=sys.stderr)
    try:
        doc = parse_document(data)
    except AttestationError as exc:
        if args.json:
            print(json.dumps({"verified": False, "error": type(exc).__name__, "message": str(exc)}))
        else:
            print(f"MALFORMED: {type(exc).__name__}: {exc}")
        return 1
    if args.json:
        print(json.dumps({"verified": False, **_document_json(doc)}))
    else:
        print("\n".join(_describe(doc)))
    return 0


def register_inspect(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``inspect``."""
    p = subparsers.add_parser(
        "inspect", help="decode a document WITHOUT verifying it", description=_BANNER
    )
    p.add_argument("file", help="document file (raw COSE, hex or base64); - for stdin")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_inspect)


# ---- report ------------------------------------------------------------------------------


def _expectations(directory: Path) -> dict[str, bool]:
    index = directory / "INDEX.json"
    if not index.is_file():
        return {}
    try:
        entries = json.loads(index.read_text(encoding="utf-8"))
        return {
            str(e["file"]): not str(e["kind"]).startswith("invalid")
            for e in entries
            if str(e["kind"]) == "genuine" or str(e["kind"]).startswith(("valid", "invalid"))
        }
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise _FileError(f"cannot use {index}: {exc}") from None


def _report(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    if not directory.is_dir():
        raise _FileError(f"{directory} is not a directory")
    files = sorted(directory.glob("*.cose"))
    if not files:
        raise _FileError(f"no *.cose files in {directory}")
    expected = _expectations(directory)
    verifier = Verifier()
    print("audit mode: each document verified at its own timestamp; authenticity only (no PCR")
    print("policy), against the pinned AWS Nitro root\n")
    rows = [("file", "verdict", "expected", "module_id", "timestamp", "mode")]
    all_match = True
    for path in files:
        data = _read_input(str(path))
        doc: AttestationDocument | None
        with warnings.catch_warnings():
            # The report is authenticity-only by design, as its header says.
            warnings.simplefilter("ignore", policies.UnsafePolicyWarning)
            try:
                doc = verifier.verify(data, policy=policies.UnsafeNoOp(), at="document").document
                verdict, valid = "valid", True
            except AttestationError as exc:
                verdict, valid = type(exc).__name__, False
                doc = _try_parse(data)
        # A document the index does not list (or every document, without an index) is
        # expected to be valid: an unlisted invalid document must fail the report.
        want = expected.get(path.name, True)
        if want != valid:
            all_match = False
        rows.append(
            (
                path.name,
                verdict,
                ("valid" if want else "invalid") + ("" if want == valid else " MISMATCH"),
                doc.module_id if doc else "-",
                doc.timestamp.isoformat(timespec="seconds") if doc else "-",
                ("debug" if doc.is_debug_mode else "prod") if doc else "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print(f"\n{len(files)} documents; " + ("all as expected" if all_match else "MISMATCHES"))
    return 0 if all_match else 1


def _try_parse(data: bytes) -> AttestationDocument | None:
    try:
        return parse_document(data)
    except AttestationError:
        return None


def register_report(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``report``."""
    p = subparsers.add_parser(
        "report",
        help="audit every *.cose in a directory at its own timestamp",
        description="Verify every *.cose in DIR in audit mode (at the document's own timestamp) "
        "and compare with INDEX.json when present (documents it does not list must be valid): "
        "exit 0 if every verdict is as expected.",
    )
    p.add_argument("dir", help="directory of *.cose documents")
    p.set_defaults(handler=_report)


# Every subcommand, in help order: each is ``register(subparsers)`` and sets ``handler=``.
# This is the one place to add another module's subcommand.
SUBCOMMANDS: Final[
    tuple[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None], ...]
] = (
    register_verify,
    register_inspect,
    register_report,
    register_mint,
)


def build_parser() -> argparse.ArgumentParser:
    """The ``nitro-attest`` argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="nitro-attest", description="Verify AWS Nitro Enclaves attestation documents."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in SUBCOMMANDS:
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``nitro-attest``; returns the exit code (0 valid, 1 invalid, 2 usage/file error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return exc.code if isinstance(exc.code, int) else 2
    try:
        code: int = args.handler(args)
    except _FileError as exc:
        print(f"nitro-attest: {exc}", file=sys.stderr)
        return 2
    except AttestationError as exc:  # anything a handler did not turn into a verdict itself
        print(f"nitro-attest: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): quiet, like other Unix tools; point stdout at
        # /dev/null so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return code
