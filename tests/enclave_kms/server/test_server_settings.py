"""Settings precedence, first-start credentials, and the CLI's error handling."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from enclave_kms import cli
from enclave_kms.errors import ValidationException
from enclave_kms.server._credentials import (
    generate_root_credential,
    load_credentials_file,
    principal_arn,
)
from enclave_kms.server._factory import ensure_credentials, export_settings
from enclave_kms.server.settings import ServerSettings, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No ENCLAVE_KMS_* from outside, and none left behind (export_settings writes os.environ)."""
    for name in list(os.environ):
        if name.startswith("ENCLAVE_KMS_"):
            monkeypatch.delenv(name)
    yield
    for name in list(os.environ):
        if name.startswith("ENCLAVE_KMS_"):
            del os.environ[name]


def test_defaults_are_loopback_and_safe() -> None:
    s = load_settings()
    assert (s.host, s.port, s.region, s.account_id) == (
        "127.0.0.1",
        4599,
        "us-east-1",
        "111122223333",
    )
    assert s.insecure_accept_any_credentials is False
    assert s.trusted_proxies == ()  # X-Forwarded-For believed from no one
    assert s.max_body_bytes >= 4 * ((262144 + 2) // 3)  # a 256 KiB document in base64 fits


def test_flags_beat_env_beat_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "kms.toml"
    toml.write_text('port = 1111\nregion = "eu-west-1"\nhost = "127.0.0.2"\n')
    monkeypatch.setenv("ENCLAVE_KMS_PORT", "2222")
    monkeypatch.setenv("ENCLAVE_KMS_REGION", "eu-central-1")
    s = load_settings({"port": 3333, "region": None}, config_file=toml)
    assert s.port == 3333  # flag
    assert s.region == "eu-central-1"  # env (the flag was not given)
    assert s.host == "127.0.0.2"  # toml


@pytest.mark.parametrize(
    "overrides",
    [
        {"account_id": "12345"},
        {"region": "moon"},
        {"port": 70000},
        {"max_body_bytes": 10},
        {"trusted_proxies": ["10.0.0.0/8", "the-load-balancer"]},
        {"tls_cert_file": "server.pem"},  # a certificate without its key
        {"tls_key_file": "server.key"},
    ],
)
def test_invalid_settings_are_validation_errors(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationException, match="invalid settings"):
        load_settings(overrides)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ValidationException, match="config file not found"):
        load_settings(config_file=tmp_path / "absent.toml")


def test_export_settings_round_trips_through_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = load_settings(
        {
            "data_dir": tmp_path,
            "trust_roots": [tmp_path / "r.pem"],
            "workers": 3,
            "recipient_max_age_seconds": 60.0,
            "trusted_proxies": ["10.0.0.0/8", "2001:db8::1"],
        }
    )
    export_settings(original)
    assert load_settings() == original


def test_first_start_generates_a_root_key_once_with_mode_0600(tmp_path: Path) -> None:
    settings = ServerSettings(data_dir=tmp_path / "data", port=4600)
    shown: list[str] = []
    first = ensure_credentials(settings, announce=shown.append, show_secret=True)
    (cred,) = list(first)
    assert cred.access_key_id.startswith("AKIA") and len(cred.access_key_id) == 20
    assert len(cred.secret_access_key) == 40
    assert cred.principal_arn == "arn:aws:iam::111122223333:root"
    path = tmp_path / "data" / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(shown) == 1
    assert cred.secret_access_key in shown[0]
    assert 'endpoint_url="http://127.0.0.1:4600"' in shown[0]
    # Second start: same key, nothing printed.
    again = ensure_credentials(settings, announce=shown.append)
    assert [c.access_key_id for c in again] == [cred.access_key_id]
    assert len(shown) == 1


def test_generated_keys_differ() -> None:
    a, b = generate_root_credential("111122223333"), generate_root_credential("111122223333")
    assert a.access_key_id != b.access_key_id and a.secret_access_key != b.secret_access_key


def test_configured_but_missing_credentials_file_is_an_error(tmp_path: Path) -> None:
    settings = ServerSettings(data_dir=tmp_path, credentials_file=tmp_path / "nope.json")
    with pytest.raises(ValidationException, match="cannot read credentials file"):
        ensure_credentials(settings, announce=lambda _: None)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"secret_access_key": "s"}, "missing 'access_key_id'"),
        ({"access_key_id": "short", "secret_access_key": "s"}, "access_key_id"),
        ({"access_key_id": "AKIAAAAAAAAAAAAAAAAA", "secret_access_key": ""}, "secret_access_key"),
        (
            {
                "access_key_id": "AKIAAAAAAAAAAAAAAAAA",
                "secret_access_key": "s",
                "principal": "group/x",
            },
            "principal",
        ),
    ],
)
def test_malformed_credentials_entries(tmp_path: Path, entry: dict[str, str], message: str) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"credentials": [entry]}))
    with pytest.raises(ValidationException, match=message):
        load_credentials_file(path, account_id="111122223333")


def test_principal_forms() -> None:
    acct = "111122223333"
    assert principal_arn("user/alice", acct) == f"arn:aws:iam::{acct}:user/alice"
    assert principal_arn("role/enclave", acct) == f"arn:aws:iam::{acct}:role/enclave"
    arn = "arn:aws:iam::444455556666:role/x"
    assert principal_arn(arn, acct) == arn


def test_cli_reports_errors_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["serve", "--data-dir", str(tmp_path), "--account-id", "123"])
    err = capsys.readouterr().err
    assert code == 1
    assert "account_id" in err and "Traceback" not in err


def test_serve_refuses_a_tls_pair_that_does_not_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "server.key"
    key.write_text("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    missing = tmp_path / "missing.pem"
    code = cli.main(
        ["serve", "--data-dir", str(tmp_path), "--tls-cert", str(missing), "--tls-key", str(key)]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "cannot serve HTTPS" in err and str(missing) in err and "Traceback" not in err
    assert "bm90IGEga2V5" not in err  # nothing of the key file's content
    assert not (tmp_path / "credentials.json").exists()  # refused before any was generated


def test_cli_audit_rejects_a_bad_since(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["audit", "--data-dir", str(tmp_path), "--since", "yesterday"]) == 1
    assert "--since" in capsys.readouterr().err


def test_cli_usage_error_exits_2() -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["no-such-command"])
    assert info.value.code == 2


STORE_URL = "postgresql://kms:s3cret-pw@db.internal:5433/kms"


def test_store_url_from_flag_env_and_toml_never_in_the_repr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    toml = tmp_path / "kms.toml"
    toml.write_text(f'store_url = "{STORE_URL}"\n')
    from_toml = load_settings(config_file=toml)
    assert from_toml.store_url == STORE_URL
    assert "s3cret-pw" not in repr(from_toml) and "s3cret-pw" not in str(from_toml)
    monkeypatch.setenv("ENCLAVE_KMS_STORE_URL", STORE_URL.replace("5433", "6000"))
    assert load_settings(config_file=toml).store_url.endswith(":6000/kms")  # type: ignore[union-attr]
    args = cli.build_parser().parse_args(["serve", "--store", STORE_URL.replace("kms", "x")])
    assert args.store_url == STORE_URL.replace("kms", "x")
    assert cli._settings(args).store_url == STORE_URL.replace("kms", "x")


def test_a_bad_store_url_is_refused_without_echoing_it() -> None:
    bad = "mysql://kms:s3cret-pw@db/kms"
    with pytest.raises(ValidationException) as err:
        load_settings({"store_url": bad})
    assert "postgresql://" in err.value.message
    assert "s3cret-pw" not in err.value.message


def test_the_service_runs_on_the_event_loop_unless_told_otherwise() -> None:
    assert load_settings().service_in_threadpool is False
    assert load_settings({"store_url": STORE_URL}).service_in_threadpool is False
    explicit = load_settings({"store_url": STORE_URL, "service_in_threadpool": True})
    assert explicit.service_in_threadpool is True


def test_serve_banner_names_the_store_without_its_password() -> None:
    from enclave_kms.service import describe_store

    assert describe_store(Path("d"), STORE_URL) == "PostgreSQL db.internal:5433/kms"
    assert describe_store(Path("d")) == f"SQLite {Path('d') / 'enclave-kms.sqlite3'}"
