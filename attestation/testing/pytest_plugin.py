"""pytest plugin: fixtures for minted attestation documents (a pytest11 entry point)."""

from __future__ import annotations
