"""Alembic revisions, oldest first; each revision id is listed in ``_pg_schema``."""

from __future__ import annotations

__all__: list[str] = []
