"""The AWS KMS JSON 1.1 protocol over HTTP: a thin adapter over the service."""

from __future__ import annotations
