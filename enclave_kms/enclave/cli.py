"""The ``enclave-kms enclave`` subcommands (kmstool_enclave_cli-compatible).

``enclave_kms.cli`` imports this module and calls :func:`register`; the implementation lives in
``_kmstool_cli``.
"""

from __future__ import annotations

from enclave_kms.enclave._kmstool_cli import register

__all__ = ["register"]
