"""The initial PostgreSQL schema: keys, material versions, aliases, tags, audit, meta.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-23

Design notes (why, not what):

* Names that the API pages through (key ids, alias names, tag keys) use ``COLLATE "C"``:
  byte order, the same as the SQLite store, and independent of the server's locale (an
  ``en_US`` collation ignores punctuation such as ``/`` and ``-`` in alias names).
* ``key_versions``, ``aliases`` and ``tags`` reference ``keys`` with ``ON DELETE CASCADE``,
  so deleting a key can never leave material or an alias behind, and an alias or tag created
  concurrently with a key's deletion fails instead of pointing at nothing.
* ``change_counter`` (one row) and ``keys.epoch`` are bumped in the same transaction as every
  change, so replicas that cache records can detect changes made by others.
* Backing material is stored only as the root-key-wrapped blob (``wrapped``).
"""

from __future__ import annotations

from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

_UPGRADE = (
    "CREATE TABLE meta (name text PRIMARY KEY, value text NOT NULL)",
    """CREATE TABLE change_counter (
        id smallint PRIMARY KEY CHECK (id = 1),
        value bigint NOT NULL
    )""",
    "INSERT INTO change_counter (id, value) VALUES (1, 0)",
    """CREATE TABLE keys (
        key_id text COLLATE "C" PRIMARY KEY,
        creation_date timestamptz NOT NULL,
        key_state text NOT NULL,
        description text NOT NULL,
        key_usage text NOT NULL,
        key_spec text NOT NULL,
        policy text NOT NULL,
        current_version integer NOT NULL CHECK (current_version >= 1),
        deletion_date timestamptz,
        pending_window_days integer,
        rotation_enabled boolean NOT NULL,
        rotation_period_days integer,
        next_rotation_date timestamptz,
        on_demand_rotation_date timestamptz,
        epoch bigint NOT NULL DEFAULT 1
    )""",
    """CREATE INDEX keys_pending_deletion ON keys (deletion_date)
        WHERE key_state = 'PendingDeletion'""",
    """CREATE TABLE key_versions (
        key_id text COLLATE "C" NOT NULL REFERENCES keys (key_id) ON DELETE CASCADE,
        version integer NOT NULL CHECK (version >= 1),
        material_id text NOT NULL,
        created timestamptz NOT NULL,
        rotation_type text,
        wrapped bytea NOT NULL,
        PRIMARY KEY (key_id, version)
    )""",
    """CREATE TABLE aliases (
        alias_name text COLLATE "C" PRIMARY KEY,
        target_key_id text COLLATE "C" NOT NULL REFERENCES keys (key_id) ON DELETE CASCADE,
        creation_date timestamptz NOT NULL,
        last_updated timestamptz NOT NULL
    )""",
    "CREATE INDEX aliases_by_key ON aliases (target_key_id, alias_name)",
    """CREATE TABLE tags (
        key_id text COLLATE "C" NOT NULL REFERENCES keys (key_id) ON DELETE CASCADE,
        tag_key text COLLATE "C" NOT NULL,
        tag_value text NOT NULL,
        PRIMARY KEY (key_id, tag_key)
    )""",
    """CREATE TABLE audit (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        time timestamptz NOT NULL,
        operation text NOT NULL,
        outcome text NOT NULL,
        principal_arn text NOT NULL,
        caller_account text NOT NULL,
        key_arn text,
        access_key_id text,
        ec_keys jsonb NOT NULL,
        att_module_id text,
        att_image_digest text,
        att_pcrs jsonb NOT NULL,
        deny_reason text,
        dry_run boolean NOT NULL
    )""",
    "CREATE INDEX audit_by_time ON audit (time, seq)",
    "CREATE INDEX audit_by_key ON audit (key_arn, time, seq)",
)

_DOWNGRADE = (
    "DROP TABLE audit",
    "DROP TABLE tags",
    "DROP TABLE aliases",
    "DROP TABLE key_versions",
    "DROP TABLE keys",
    "DROP TABLE change_counter",
    "DROP TABLE meta",
)


def upgrade() -> None:
    """Create every table."""
    for statement in _UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    """Drop every table (destroys all keys: only for tests and a fresh start)."""
    for statement in _DOWNGRADE:
        op.execute(statement)
