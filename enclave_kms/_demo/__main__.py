"""``python -m enclave_kms._demo`` runs ``enclave-kms demo``."""

from __future__ import annotations

import sys

from enclave_kms._demo.cli import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main())
