"""``enclave-kms enclave``: kmstool_enclave_cli's arguments, exact output lines and exit codes.

These run in-process with a KMS double behind boto3's place; the same lines against the real
server subprocess are checked in test_server_integration.py.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from enclave_sdk_helpers import FakeKms

from enclave_kms.enclave import _kmstool_cli, session
from enclave_kms.enclave._kmstool_cli import kms_endpoint, main
from enclave_kms.enclave._nsm import SimulatedNsmWarning

B64 = r"[A-Za-z0-9+/]+={0,2}"
CREDS = [
    "--aws-access-key-id",
    "ASIAENCLAVE",
    "--aws-secret-access-key",
    "s3cr3t",
    "--aws-session-token",
    "tok",
]
pytestmark = pytest.mark.filterwarnings("ignore::enclave_kms.enclave._nsm.SimulatedNsmWarning")


@pytest.fixture
def fake_kms(monkeypatch: pytest.MonkeyPatch) -> tuple[FakeKms, list[dict[str, Any]]]:
    """Replace the boto3 client the CLI builds with a KMS double; record the build arguments."""
    kms = FakeKms()
    built: list[dict[str, Any]] = []

    def build(**kwargs: Any) -> FakeKms:
        built.append(kwargs)
        return kms

    monkeypatch.setattr(session, "build_kms_client", build)
    return kms, built


def _run(pki_dir: Path, *args: str) -> int:
    return main(["enclave", *args, *CREDS, "--nsm", "simulated", "--pki-dir", str(pki_dir)])


def test_genkey_prints_ciphertext_then_plaintext(
    fake_kms: Any, pki_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kms, built = fake_kms
    assert _run(pki_dir, "genkey", "--key-id", "alias/app", "--key-spec", "AES-256") == 0
    out = capsys.readouterr().out
    match = re.fullmatch(f"CIPHERTEXT: ({B64})\nPLAINTEXT: ({B64})\n", out)
    assert match, out
    assert len(base64.b64decode(match[2])) == 32
    (op, params, response) = kms.calls[-1]
    assert (op, params["KeyId"], params["KeySpec"]) == ("GenerateDataKey", "alias/app", "AES_256")
    assert base64.b64decode(match[1]) == response["CiphertextBlob"]
    credentials = built[0]["credentials"]
    assert (credentials.access_key_id, credentials.session_token) == ("ASIAENCLAVE", "tok")


def test_genkey_aes_128(fake_kms: Any, pki_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(pki_dir, "genkey", "--key-id", "k", "--key-spec", "AES-128") == 0
    plaintext = capsys.readouterr().out.splitlines()[1].removeprefix("PLAINTEXT: ")
    assert len(base64.b64decode(plaintext)) == 16


def test_decrypt_prints_the_plaintext_of_a_genkey_ciphertext(
    fake_kms: Any, pki_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kms, _ = fake_kms
    assert _run(pki_dir, "genkey", "--key-id", "k", "--key-spec", "AES-256") == 0
    ciphertext_line, plaintext_line = capsys.readouterr().out.splitlines()
    ciphertext = ciphertext_line.removeprefix("CIPHERTEXT: ")
    code = _run(
        pki_dir,
        "decrypt",
        "--ciphertext",
        ciphertext,
        "--key-id",
        "k",
        "--encryption-algorithm",
        "SYMMETRIC_DEFAULT",
    )
    assert code == 0
    assert capsys.readouterr().out == plaintext_line + "\n"
    _, params, _ = kms.calls[-1]
    assert params["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    assert params["KeyId"] == "k"


def test_decrypt_with_wrong_context_fails_with_exit_1(
    fake_kms: Any, pki_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(pki_dir, "genkey", "--key-id", "k", "--key-spec", "AES-256") == 0
    ciphertext = capsys.readouterr().out.splitlines()[0].removeprefix("CIPHERTEXT: ")
    code = _run(pki_dir, "decrypt", "--ciphertext", ciphertext, "--encryption-context", '{"a":"b"}')
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == ""
    assert "InvalidCiphertextException" in captured.err
    assert "Traceback" not in captured.err


def test_genrandom_prints_plaintext(
    fake_kms: Any, pki_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(pki_dir, "genrandom", "--length", "1024") == 0
    out = capsys.readouterr().out
    match = re.fullmatch(f"PLAINTEXT: ({B64})\n", out)
    assert match
    assert len(base64.b64decode(match[1])) == 1024


def test_simulated_nsm_warns_on_stderr_and_as_a_warning(
    fake_kms: Any, pki_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.warns(SimulatedNsmWarning):
        assert _run(pki_dir, "genrandom", "--length", "1") == 0
    assert "UNSAFE" in capsys.readouterr().err


def test_simulated_nsm_needs_a_pki_dir(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["enclave", "genrandom", "--length", "1", *CREDS, "--nsm", "simulated"]
    assert main(args) == 2
    assert "--pki-dir" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args",
    [
        ["genrandom", "--length", "0", *CREDS],
        ["genrandom", "--length", "1025", *CREDS],
        ["genrandom", "--length", "ten", *CREDS],
        ["genkey", "--key-id", "k", "--key-spec", "AES-512", *CREDS],
        ["genkey", "--key-spec", "AES-256", *CREDS],  # no key id
        ["decrypt", "--ciphertext", "not base64!", *CREDS],
        ["decrypt", "--ciphertext", "AAAA", "--encryption-context", "[1]", *CREDS],
        ["decrypt", "--ciphertext", "AAAA", "--encryption-algorithm", "SM2PKE", *CREDS],
        ["genrandom", "--length", "8", "--proxy-port", "70000", *CREDS],
        [],
    ],
)
def test_usage_errors_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["enclave", *args])
    assert caught.value.code == 2
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        (CREDS[:4], "--aws-session-token"),  # kmstool requires all three
        (CREDS[2:], "--aws-access-key-id"),
    ],
)
def test_missing_credentials_exit_2_naming_the_flag(
    given: list[str],
    missing: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    assert main(["enclave", "genrandom", "--length", "8", *given]) == 2
    captured = capsys.readouterr()
    assert missing in captured.err and captured.out == ""


def test_credentials_may_come_from_the_environment_instead_of_flags(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Flags show in ps; the AWS_* variables do not. Past the credentials check, this run stops
    # at the missing /dev/nsm (exit 1), not at usage (exit 2).
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ASIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token")
    assert main(["enclave", "genrandom", "--length", "8"]) == 1
    assert "NSM" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("region", "port", "override", "expected"),
    [
        ("us-east-1", 8000, None, "https://kms.us-east-1.amazonaws.com:8000"),
        ("eu-west-2", 443, None, "https://kms.eu-west-2.amazonaws.com"),
        ("cn-north-1", 8000, None, "https://kms.cn-north-1.amazonaws.com.cn:8000"),
        ("eusc-de-east-1", 8000, None, "https://kms.eusc-de-east-1.amazonaws.eu:8000"),
        ("us-east-1", 8000, "http://127.0.0.1:4599", "http://127.0.0.1:4599"),
    ],
)
def test_endpoint_follows_region_and_proxy_port(
    region: str, port: int, override: str | None, expected: str
) -> None:
    assert kms_endpoint(region, port, override) == expected


def test_cli_passes_region_and_endpoint_to_the_client(
    fake_kms: Any, pki_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, built = fake_kms
    code = _run(pki_dir, "genrandom", "--length", "4", "--region", "eu-west-1", "--proxy-port", "9")
    assert code == 0
    assert built[0]["region"] == "eu-west-1"
    assert built[0]["endpoint_url"] == "https://kms.eu-west-1.amazonaws.com:9"


@pytest.mark.skipif(os.path.exists("/dev/nsm"), reason="this machine has a real NSM device")
def test_outside_an_enclave_the_cli_says_so_without_a_traceback() -> None:
    # The installed entry point's code path (python -m enclave_kms), in a fresh process.
    result = subprocess.run(
        [sys.executable, "-m", "enclave_kms", "enclave", "genrandom", "--length", "8", *CREDS],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert "no NSM device at /dev/nsm" in result.stderr
    assert "Traceback" not in result.stderr


def test_unexpected_exceptions_are_one_line_errors(
    monkeypatch: pytest.MonkeyPatch, pki_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def explode(*_: Any, **__: Any) -> Any:
        raise RuntimeError("secret-bearing detail")

    monkeypatch.setattr(_kmstool_cli, "EnclaveSession", explode)
    assert _run(pki_dir, "genrandom", "--length", "8") == 1
    err = capsys.readouterr().err
    assert "internal error (RuntimeError)" in err
    assert "secret-bearing detail" not in err
