"""``python -m enclave_kms.proxy``: the same as ``enclave-kms proxy``."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
