"""Verify AWS Nitro Enclaves attestation documents.

A pure library: it takes bytes and returns a verified, typed document, or raises a precise
:class:`attestation.errors.AttestationError`. It knows nothing of KMS, HTTP or storage.
"""

from __future__ import annotations
