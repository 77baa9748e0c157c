"""First start: a generated secret reaches a terminal only, and only after the settings check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from enclave_kms.server._factory import ensure_credentials
from enclave_kms.server.settings import ServerSettings


def test_the_secret_is_not_shown_when_output_is_not_a_terminal(tmp_path: Path) -> None:
    settings = ServerSettings(data_dir=tmp_path / "data", port=4600)
    shown: list[str] = []
    (cred,) = list(ensure_credentials(settings, announce=shown.append, show_secret=False))
    assert len(shown) == 1
    assert cred.secret_access_key not in shown[0]
    assert cred.access_key_id in shown[0] and "credentials.json" in shown[0]


def test_a_bad_trust_root_fails_before_any_credential_is_created(tmp_path: Path) -> None:
    data = tmp_path / "data"
    out = subprocess.run(
        [sys.executable, "-m", "enclave_kms", "serve", "--data-dir", str(data),
         "--trust-root", str(tmp_path / "missing.pem"), "--port", "1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 1 and "cannot read trust root" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (data / "credentials.json").exists()
    assert "SECRET" not in (out.stdout + out.stderr).upper()


def test_accepting_any_credentials_is_refused_beyond_loopback(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "enclave_kms", "serve", "--data-dir", str(tmp_path),
         "--host", "0.0.0.0", "--port", "1", "--insecure-accept-any-credentials"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 1 and "loopback" in out.stderr
    assert "Traceback" not in out.stderr
