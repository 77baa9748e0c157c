"""The parent-instance relay (a better vsock-proxy). Imports nothing else from the project."""

from __future__ import annotations
