"""Key and alias records sealed with a MAC under the root key.

Revision ID: 0002_record_mac
Revises: 0001_initial
Create Date: 2026-11-24

Each ``keys`` and ``aliases`` row gains ``mac`` (see ``enclave_kms.store._integrity``): the
store then refuses a record that someone with write access to the database, but without the
root key, has changed. Rows that exist when this runs are sealed as they are, so the command
needs the root key when there are any (``ENCLAVE_KMS_ROOT_KEY_FILE`` or
``ENCLAVE_KMS_ROOT_KEY``, as for ``serve``); it is checked against the database's check value
first, so a wrong key fails here instead of sealing every record under it.
"""

from __future__ import annotations

from alembic import context, op
from sqlalchemy import text

from enclave_kms._rootkey import ROOT_KEY_ENV, ROOT_KEY_FILE_ENV, RootKey, RootKeyError
from enclave_kms.store._integrity import ALIAS_RECORD, KEY_RECORD, seal_record

revision = "0002_record_mac"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

_KEY_COLUMNS = (
    "key_id, creation_date, key_state, description, key_usage, key_spec, policy, "
    "current_version, deletion_date, pending_window_days, rotation_enabled, "
    "rotation_period_days, next_rotation_date, on_demand_rotation_date"
)
_ALIAS_COLUMNS = "alias_name, target_key_id, creation_date, last_updated"


def upgrade() -> None:
    """Add the MAC columns and seal the records already there."""
    bind = op.get_bind()
    op.execute("ALTER TABLE keys ADD COLUMN mac bytea")
    op.execute("ALTER TABLE aliases ADD COLUMN mac bytea")
    keys = bind.execute(text(f"SELECT {_KEY_COLUMNS} FROM keys")).fetchall()  # noqa: S608
    aliases = bind.execute(text(f"SELECT {_ALIAS_COLUMNS} FROM aliases")).fetchall()  # noqa: S608
    if not keys and not aliases:
        return
    root = context.config.attributes.get("root_key")
    if not isinstance(root, RootKey):
        raise RootKeyError(
            "this upgrade seals the existing key and alias records under the root key: run "
            f"`enclave-kms migrate` with {ROOT_KEY_FILE_ENV} or {ROOT_KEY_ENV} set, as for serve"
        )
    check = bind.execute(text("SELECT value FROM meta WHERE name = 'root_key_check'")).fetchone()
    if check is not None:
        root.verify_check_value(str(check[0]))
    for row in keys:
        bind.execute(
            text("UPDATE keys SET mac = :mac WHERE key_id = :id"),
            {"mac": seal_record(root, KEY_RECORD, tuple(row)), "id": row[0]},
        )
    for row in aliases:
        bind.execute(
            text("UPDATE aliases SET mac = :mac WHERE alias_name = :name"),
            {"mac": seal_record(root, ALIAS_RECORD, tuple(row)), "name": row[0]},
        )


def downgrade() -> None:
    """Drop the MAC columns (records are then unprotected again)."""
    op.execute("ALTER TABLE aliases DROP COLUMN mac")
    op.execute("ALTER TABLE keys DROP COLUMN mac")
