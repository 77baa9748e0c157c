"""Key and audit storage behind a small interface; SQLite is the embedded default."""

from __future__ import annotations
