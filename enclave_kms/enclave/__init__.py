"""The enclave-side SDK: attest, call KMS with Recipient, decrypt CiphertextForRecipient."""

from __future__ import annotations
