"""A KMS-compatible data-key service with Nitro Enclaves ``Recipient`` support."""

from __future__ import annotations
