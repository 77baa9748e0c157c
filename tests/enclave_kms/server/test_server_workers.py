"""``--workers 2``: two processes from the app factory share one SQLite store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from kms_server_process import kms_client, running_server

pytestmark = pytest.mark.interop


def test_two_workers_serve_the_same_keys(tmp_path: Path) -> None:
    with running_server(tmp_path, ["--workers", "2"]) as server:
        # Several clients (new connections) land on either worker; every key is visible to all.
        key_ids = []
        for _ in range(6):
            kms = kms_client(server)
            key_ids.append(kms.create_key()["KeyMetadata"]["KeyId"])
            blob = kms.encrypt(KeyId=key_ids[0], Plaintext=b"shared")["CiphertextBlob"]
            assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"shared"
        listed = {k["KeyId"] for k in kms.list_keys(Limit=100)["Keys"]}
        assert set(key_ids) <= listed


def test_python_dash_m_runs_the_cli() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "enclave_kms", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "serve" in out.stdout and "audit" in out.stdout
