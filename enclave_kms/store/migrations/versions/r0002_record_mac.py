"""A MAC column on key and alias records (record integrity).

Revision ID: 0002_record_mac
Revises: 0001_initial
Create Date: 2026-11-24

Each ``keys`` and ``aliases`` row gains ``mac`` (see ``enclave_kms.store._integrity``), so
that the store refuses a record changed by someone with write access to the database but
without the root key. Rows already present are left unsealed on purpose: a migration that
sealed what it found would seal tampered rows too. A database that holds records opens only
after an operator has checked and sealed them once with ``enclave-kms seal-records``.
"""

from __future__ import annotations

from alembic import op

revision = "0002_record_mac"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the MAC columns (existing rows stay unsealed until ``seal-records``)."""
    op.execute("ALTER TABLE keys ADD COLUMN mac bytea")
    op.execute("ALTER TABLE aliases ADD COLUMN mac bytea")


def downgrade() -> None:
    """Drop the MAC columns and the seal marker (records are then unprotected again)."""
    op.execute("DELETE FROM meta WHERE name = 'records_sealed'")
    op.execute("ALTER TABLE aliases DROP COLUMN mac")
    op.execute("ALTER TABLE keys DROP COLUMN mac")
