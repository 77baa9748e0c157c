"""Alembic migration scripts for the PostgreSQL store (applied by ``enclave-kms migrate``)."""

from __future__ import annotations

__all__: list[str] = []
