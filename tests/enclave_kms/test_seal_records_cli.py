"""``enclave-kms seal-records``: the operator's one-time sealing of a store written before
record integrity (SQLite here; the PostgreSQL store shares the code path below the CLI)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from sqlite_versions import V2_FILE, rewind

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
    rewind(data_dir / "enclave-kms.sqlite3", 2, V2_FILE)
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
    assert "1 key and alias records carry no MAC and 0 do" in err


def test_seal_records_lists_then_seals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ENCLAVE_KMS_ROOT_KEY", raising=False)
    monkeypatch.delenv("ENCLAVE_KMS_ROOT_KEY_FILE", raising=False)
    key_id = _old_store(tmp_path)
    assert cli.main(["seal-records", "--data-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    (record,) = [json.loads(line)["key"] for line in lines if line.startswith("{")]
    assert (record["key_id"], record["key_state"], record["key_usage"]) == (
        key_id,
        "Enabled",
        "ENCRYPT_DECRYPT",
    )
    assert record["description"] == "payments" and record["current_version"] == "1"
    assert '"Principal" : {' in record["policy"] or "Principal" in record["policy"]
    digest = lines[-1].rsplit(" ", 1)[1]
    assert "run again with --confirm" in lines[-1] and len(digest) == 64
    # Listing changed nothing: the store still does not open.
    assert cli.main(["audit", "--data-dir", str(tmp_path)]) == 1
    capsys.readouterr()
    assert cli.main(["seal-records", "--data-dir", str(tmp_path), "--confirm", "f" * 64]) == 1
    assert "not the ones listed" in capsys.readouterr().err
    assert cli.main(["seal-records", "--data-dir", str(tmp_path), "--confirm", digest]) == 0
    assert "sealed 1 key and 0 alias records" in capsys.readouterr().out
    assert cli.main(["audit", "--data-dir", str(tmp_path)]) == 0
    assert cli.main(["seal-records", "--data-dir", str(tmp_path)]) == 0
    assert "already sealed: all 1 records" in capsys.readouterr().out


def test_planted_control_characters_cannot_hide_a_listed_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ENCLAVE_KMS_ROOT_KEY", raising=False)
    monkeypatch.delenv("ENCLAVE_KMS_ROOT_KEY_FILE", raising=False)
    key_id = _old_store(tmp_path)
    decoy = "alias/zz\r\x1b[2A\x1b[2K"
    with sqlite3.connect(tmp_path / "enclave-kms.sqlite3") as db:
        db.execute("INSERT INTO aliases VALUES (?, ?, 0, 0)", (decoy, key_id))
    assert cli.main(["seal-records", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out  # escaped, not sent to the terminal
    assert "\\u001b[2A" in out and key_id in out


def test_seal_records_needs_an_existing_store_and_its_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ENCLAVE_KMS_ROOT_KEY", raising=False)
    monkeypatch.delenv("ENCLAVE_KMS_ROOT_KEY_FILE", raising=False)
    assert cli.main(["seal-records", "--data-dir", str(tmp_path / "none")]) == 1
    assert "there is no store" in capsys.readouterr().err
    _old_store(tmp_path)
    (tmp_path / "root.key").unlink()
    assert cli.main(["seal-records", "--data-dir", str(tmp_path)]) == 1
    assert "no root key" in capsys.readouterr().err
    assert not (tmp_path / "root.key").exists()  # none generated
