"""Test harness: a test PKI, a simulated NSM, document minting and a pytest plugin."""

from __future__ import annotations
