"""``enclave-kms seal-records``: the operator's one-time sealing of a store written before
record integrity (SQLite here; the PostgreSQL store shares the code path below the CLI)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from enclave_kms import cli
from enclave_kms.model import Caller, CreateKeyRequest
from enclave_kms.service import open_service

ACCOUNT = "111122223333"
ROOT = Caller(principal_arn=f"arn:aws:iam::{ACCOUNT}:root", account_id=ACCOUNT)


def _old_store(data_dir: Path) -> str:
    """A data directory with one key, made to look as a pre-integrity version left it."""
    service = open_service(data_dir, region="us-east-1", account_id=ACCOUNT, environ={})
    meta = service.create_key(ROOT, CreateKeyRequest(description="payments")).key_metadata
    assert meta is not None
    service.close()
    db = sqlite3.connect(data_dir / "enclave-kms.sqlite3", isolation_level=None)
    db.executescript(
        "ALTER TABLE keys DROP COLUMN mac; ALTER TABLE aliases DROP COLUMN mac;"
        "UPDATE meta SET value='2' WHERE name='schema_version';"
        "DELETE FROM meta WHERE name='records_sealed';"
    )
    db.close()
    return meta.key_id


def test_the_store_refuses_to_open_and_says_what_to_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ENCLAVE_KMS_ROOT_KEY", raising=False)
    monkeypatch.delenv("ENCLAVE_KMS_ROOT_KEY_FILE", raising=False)
    _old_store(tmp_path)
    assert cli.main(["audit", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"enclave-kms seal-records --data-dir {tmp_path}" in err
    assert "1 key and 0 alias records" in err


def test_seal_records_lists_then_seals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ENCLAVE_KMS_ROOT_KEY", raising=False)
    monkeypatch.delenv("ENCLAVE_KMS_ROOT_KEY_FILE", raising=False)
    key_id = _old_store(tmp_path)
    assert cli.main(["seal-records", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"key {key_id} Enabled ENCRYPT_DECRYPT SYMMETRIC_DEFAULT policy=" in out
    assert '"Principal":{"AWS":"arn:aws:iam::111122223333:root"}' in out
    assert "run again with --confirm" in out
    # Listing changed nothing: the store still does not open.
    assert cli.main(["audit", "--data-dir", str(tmp_path)]) == 1
    capsys.readouterr()
    assert cli.main(["seal-records", "--data-dir", str(tmp_path), "--confirm"]) == 0
    assert "sealed 1 key and 0 alias records" in capsys.readouterr().out
    assert cli.main(["audit", "--data-dir", str(tmp_path)]) == 0
    # Once sealed, sealing again is refused: an unsealed record would now be tampering.
    assert cli.main(["seal-records", "--data-dir", str(tmp_path), "--confirm"]) == 1
    assert "already sealed" in capsys.readouterr().err


def test_seal_records_needs_an_existing_store_and_its_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ENCLAVE_KMS_ROOT_KEY", raising=False)
    monkeypatch.delenv("ENCLAVE_KMS_ROOT_KEY_FILE", raising=False)
    assert cli.main(["seal-records", "--data-dir", str(tmp_path / "none")]) == 1
    assert "there is no store" in capsys.readouterr().err
    _old_store(tmp_path)
    (tmp_path / "root.key").unlink()
    assert cli.main(["seal-records", "--data-dir", str(tmp_path), "--confirm"]) == 1
    assert "no root key" in capsys.readouterr().err
    assert not (tmp_path / "root.key").exists()  # none generated
