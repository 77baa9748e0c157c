"""``python -m enclave_kms`` runs the ``enclave-kms`` command."""

from __future__ import annotations

import sys

from enclave_kms.cli import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main())
