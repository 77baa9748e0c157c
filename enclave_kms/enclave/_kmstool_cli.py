"""``enclave-kms enclave {decrypt,genkey,genrandom}``: a drop-in for ``kmstool_enclave_cli``.

Arguments, defaults and output follow aws-nitro-enclaves-sdk-c's ``kmstool_enclave_cli``
(enclave-ecosystem.md §3), so scripts that shell out to it keep working:

* ``PLAINTEXT: <base64>`` on stdout for ``decrypt`` and ``genrandom``;
  ``CIPHERTEXT: <base64>`` then ``PLAINTEXT: <base64>`` for ``genkey``;
* errors on stderr and exit status 1; usage errors exit 2 (argparse);
* ``--aws-access-key-id``, ``--aws-secret-access-key`` and ``--aws-session-token`` are all
  required, as in kmstool (the enclave cannot reach IMDS; the parent hands in temporary
  credentials). Flags show in ``ps`` and ``/proc/*/cmdline``, so each may instead come from
  ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and ``AWS_SESSION_TOKEN`` (for example from
  ``eval "$(enclave-kms proxy receive-credentials ...)"``); a flag wins over the variable.

Reaching KMS. kmstool speaks TLS over AF_VSOCK to (CID 3, ``--proxy-port``), where the
parent's vsock-proxy relays to ``kms.<region>.amazonaws.com:443``, with the real hostname as
TLS SNI. boto3 cannot dial vsock, so the default endpoint here is
``https://kms.<region>.<dns suffix>:<proxy-port>``: inside the enclave, ``/etc/hosts`` maps that
host name to 127.0.0.1 and a TCP→vsock forwarder (for example ``enclave-kms proxy`` with a
``tcp:127.0.0.1:<proxy-port>`` → ``vsock:3:<proxy-port>`` route) listens there. TLS still ends
at real KMS, so certificate and SNI checks are the normal ones. ``--endpoint-url`` overrides
this (for example ``http://127.0.0.1:4599`` for a local ``enclave-kms serve``).

Unlike kmstool, which aborts on an assertion outside an enclave (sdk-c #123), a missing
``/dev/nsm`` is reported as a one-line error. ``--nsm simulated --pki-dir DIR`` uses a
simulated NSM signing with a test PKI: for laptops and CI only; it warns on every run.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from enclave_kms.enclave._kms_client import Credentials
from enclave_kms.enclave._nsm import load_simulated_nsm
from enclave_kms.enclave._recipient import NsmClient
from enclave_kms.enclave.errors import EnclaveError
from enclave_kms.enclave.session import EnclaveSession

__all__ = ["kms_endpoint", "main", "register"]

_KEY_SPECS = {"AES-256": "AES_256", "AES-128": "AES_128"}
_ENCRYPTION_ALGORITHMS = ("SYMMETRIC_DEFAULT", "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256")
_SIMULATED_WARNING = (
    "WARNING: UNSAFE --nsm simulated: attestation documents are signed by a TEST PKI, not by "
    "AWS. Real KMS refuses them; never use this in production."
)


def _dns_suffix(region: str) -> str:
    # sdk-c source/rest.c: the partition's DNS suffix follows from the region prefix.
    for prefix, suffix in (
        ("cn-", "amazonaws.com.cn"),
        ("eusc-", "amazonaws.eu"),
        ("us-isob-", "sc2s.sgov.gov"),
        ("us-iso-", "c2s.ic.gov"),
    ):
        if region.startswith(prefix):
            return suffix
    return "amazonaws.com"


def kms_endpoint(region: str, proxy_port: int, endpoint_url: str | None = None) -> str:
    """The KMS endpoint URL for the CLI's arguments (see the module docstring)."""
    if endpoint_url:
        return endpoint_url
    host = f"kms.{region}.{_dns_suffix(region)}"
    return f"https://{host}" if proxy_port == 443 else f"https://{host}:{proxy_port}"


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= value <= 0xFFFF:
        raise argparse.ArgumentTypeError("the port must be 1..65535")
    return value


def _length(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    # kmstool and the KMS model: NumberOfBytes is 1..1024.
    if not 1 <= value <= 1024:
        raise argparse.ArgumentTypeError("--length must be 1..1024")
    return value


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise argparse.ArgumentTypeError("--ciphertext is not valid base64") from None


def _context(text: str) -> dict[str, str]:
    try:
        value: Any = json.loads(text)
    except ValueError:
        raise argparse.ArgumentTypeError("--encryption-context is not valid JSON") from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise argparse.ArgumentTypeError(
            "--encryption-context must be a JSON object of strings to strings"
        )
    return value


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--region", default="us-east-1", help="AWS region (default us-east-1)")
    common.add_argument(
        "--proxy-port",
        type=_port,
        default=8000,
        help="port of the KMS forwarder; the endpoint is https://kms.<region>.<suffix>:<port> "
        "(default 8000, as kmstool)",
    )
    # Required as in kmstool, but each may come from its AWS_* variable instead (see above).
    common.add_argument("--aws-access-key-id", help="or AWS_ACCESS_KEY_ID")
    common.add_argument("--aws-secret-access-key", help="or AWS_SECRET_ACCESS_KEY")
    common.add_argument("--aws-session-token", help="or AWS_SESSION_TOKEN")
    common.add_argument(
        "--endpoint-url", help="KMS endpoint URL; overrides the region/proxy-port endpoint"
    )
    common.add_argument(
        "--nsm",
        choices=("device", "simulated"),
        default="device",
        help="'device' (default): /dev/nsm. 'simulated': UNSAFE, tests and laptops only",
    )
    common.add_argument("--pki-dir", help="test PKI directory for --nsm simulated")
    return common


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``enclave {decrypt,genkey,genrandom}`` to an argparse subparsers object.

    Each leaf parser gets ``func``: a callable taking the parsed namespace and returning the
    exit status (0 or 1; usage errors exit 2 inside argparse).
    """
    enclave: argparse.ArgumentParser = subparsers.add_parser(
        "enclave",
        help="kmstool_enclave_cli-compatible KMS calls from inside an enclave",
        description="kmstool_enclave_cli-compatible KMS calls with Recipient attestation",
    )
    commands = enclave.add_subparsers(dest="enclave_command", metavar="COMMAND", required=True)
    common = _common()

    decrypt = commands.add_parser("decrypt", parents=[common], help="KMS Decrypt")
    decrypt.add_argument("--ciphertext", type=_b64, required=True, help="base64 ciphertext")
    decrypt.add_argument("--key-id")
    decrypt.add_argument("--encryption-algorithm", choices=_ENCRYPTION_ALGORITHMS)
    decrypt.add_argument("--encryption-context", type=_context, help="JSON object")
    decrypt.set_defaults(func=run)

    genkey = commands.add_parser("genkey", parents=[common], help="KMS GenerateDataKey")
    genkey.add_argument("--key-id", required=True)
    genkey.add_argument("--key-spec", choices=tuple(_KEY_SPECS), required=True)
    genkey.set_defaults(func=run)

    genrandom = commands.add_parser("genrandom", parents=[common], help="KMS GenerateRandom")
    genrandom.add_argument("--length", type=_length, required=True, help="1..1024 bytes")
    genrandom.set_defaults(func=run)
    return enclave


_CREDENTIAL_SOURCES = (
    ("aws_access_key_id", "--aws-access-key-id", "AWS_ACCESS_KEY_ID"),
    ("aws_secret_access_key", "--aws-secret-access-key", "AWS_SECRET_ACCESS_KEY"),
    ("aws_session_token", "--aws-session-token", "AWS_SESSION_TOKEN"),
)


def _credentials(args: argparse.Namespace, environ: Mapping[str, str]) -> Credentials | str:
    """The three credentials from flags or the environment, or a usage message naming what lacks."""
    values = {}
    for attr, flag, variable in _CREDENTIAL_SOURCES:
        value = getattr(args, attr, None) or environ.get(variable)
        if not value:
            return f"error: {flag} (or {variable}) is required"
        values[attr] = value
    return Credentials(
        access_key_id=values["aws_access_key_id"],
        secret_access_key=values["aws_secret_access_key"],
        session_token=values["aws_session_token"],
    )


def _session(args: argparse.Namespace, credentials: Credentials, stderr: TextIO) -> EnclaveSession:
    nsm: NsmClient | None = None
    if args.nsm == "simulated":
        print(_SIMULATED_WARNING, file=stderr)
        nsm = load_simulated_nsm(args.pki_dir)
    return EnclaveSession(
        nsm=nsm,
        region=args.region,
        endpoint_url=kms_endpoint(args.region, args.proxy_port, args.endpoint_url),
        credentials=credentials,
    )


def _b64out(data: bytes | bytearray) -> str:
    return base64.b64encode(data).decode("ascii")


def run(
    args: argparse.Namespace, *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    """Run one parsed ``enclave`` command; print kmstool's output lines; return the exit code."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    if args.nsm == "simulated" and not args.pki_dir:
        print("error: --nsm simulated needs --pki-dir DIR (a saved test PKI)", file=err)
        return 2
    credentials = _credentials(args, os.environ)
    if isinstance(credentials, str):
        print(credentials, file=err)
        return 2
    try:
        session = _session(args, credentials, err)
        if args.enclave_command == "decrypt":
            result = session.decrypt(
                args.ciphertext,
                key_id=args.key_id,
                encryption_algorithm=args.encryption_algorithm,
                encryption_context=args.encryption_context,
            )
            lines = [f"PLAINTEXT: {_b64out(result.plaintext)}"]
            result.wipe()
        elif args.enclave_command == "genkey":
            key = session.generate_data_key(args.key_id, key_spec=_KEY_SPECS[args.key_spec])
            lines = [
                f"CIPHERTEXT: {_b64out(key.ciphertext_blob)}",
                f"PLAINTEXT: {_b64out(key.plaintext)}",
            ]
            key.wipe()
        else:
            random = session.generate_random(args.length)
            lines = [f"PLAINTEXT: {_b64out(random)}"]
    except EnclaveError as exc:
        print(f"error: {exc}", file=err)
        return 1
    except Exception as exc:
        # The SDK converts every failure it knows; anything else is a bug, reported in one
        # line (no traceback, and no message text that could carry request data).
        print(f"error: internal error ({type(exc).__name__})", file=err)
        return 1
    out.write("\n".join(lines) + "\n")
    out.flush()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` as ``enclave-kms`` would and run the ``enclave`` command."""
    parser = argparse.ArgumentParser(prog="enclave-kms")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    status: int = args.func(args)
    return status
