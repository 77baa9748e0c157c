"""``enclave-kms demo``: the whole Nitro flow on one machine, in a few seconds.

Registered by the project CLI through :func:`register`; ``python -m enclave_kms._demo`` runs the
same command on its own.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from enclave_kms._demo.run import run_demo

__all__ = ["build_parser", "main", "register"]

_DESCRIPTION = (
    "Run the whole Nitro Enclaves flow locally: a fresh test PKI (DO NOT TRUST), enclave-kms "
    "serve, a key whose policy admits one enclave image (PCR0), the parent proxy (TCP standing "
    "in for vsock), the credentials hand-off, a simulated enclave that encrypts and decrypts "
    "with a data key delivered through CiphertextForRecipient, and the refusals of another "
    "image and of the parent itself. Exits 0 if every step behaves as it must, 1 otherwise."
)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keep",
        action="store_true",
        help="leave the temp workspace (store, logs, test PKI, throwaway credentials) and "
        "print where it is",
    )
    parser.add_argument(
        "--seed",
        type=lambda text: int(text, 0),
        help="test PKI seed (random by default; any integer, e.g. 0x1234)",
    )


def _handle(args: argparse.Namespace) -> int:
    return run_demo(keep=args.keep, seed=args.seed).exit_code


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``demo`` to the project CLI's ``add_subparsers()`` object (sets ``func``)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="run the whole Nitro flow locally (simulated enclave, KMS, proxy) in seconds",
        description=_DESCRIPTION,
    )
    _add_arguments(parser)
    parser.set_defaults(func=_handle)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The stand-alone parser (``python -m enclave_kms._demo``)."""
    parser = argparse.ArgumentParser(prog="enclave-kms demo", description=_DESCRIPTION)
    _add_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``enclave-kms demo`` with ``argv``; return the exit code (130 if interrupted)."""
    args = build_parser().parse_args(argv)
    try:
        return _handle(args)
    except OSError as exc:  # e.g. no writable temp directory for the workspace
        print(f"enclave-kms demo: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
