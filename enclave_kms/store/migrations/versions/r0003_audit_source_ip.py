"""Audit records keep the address each request came from.

Revision ID: 0003_audit_source_ip
Revises: 0002_record_mac
Create Date: 2026-11-24

``audit.source_ip`` is CloudTrail's ``sourceIPAddress``: the TCP peer, or the client named by
a trusted proxy's ``X-Forwarded-For``. It is ``text`` rather than ``inet`` so that a record
reads back as the same string in either store. Rows already present read as NULL (unknown);
adding a nullable column without a default rewrites no row, so this is quick on a large table.
"""

from __future__ import annotations

from alembic import op

revision = "0003_audit_source_ip"
down_revision = "0002_record_mac"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the nullable ``source_ip`` column to ``audit``."""
    op.execute("ALTER TABLE audit ADD COLUMN source_ip text")


def downgrade() -> None:
    """Drop ``audit.source_ip`` (the addresses recorded since the upgrade are lost)."""
    op.execute("ALTER TABLE audit DROP COLUMN source_ip")
