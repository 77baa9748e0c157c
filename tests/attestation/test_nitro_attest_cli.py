"""``nitro-attest``: exit codes, output shapes, input forms, inspect and report."""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from nitro_test_helpers import T0, mini_pki

from attestation.cli import build_parser, main

BLOCKY = "blocky-nitrite-nitro_attestation.cose"  # prod
DEBUG = "hf-nitrite_test.cose"
PCR0 = (
    "e72a46ca80a260fb044a125442f0c7e331813bcbaf9724d9"
    "f3857758992766f2d65710a27aa94ae3949dd54e7c9fe86a"
)


@pytest.fixture
def nitro(fixtures_dir: Path) -> Path:
    return fixtures_dir / "nitro"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code, out, _ = run(capsys, *argv, "--json")
    lines = out.strip().splitlines()
    assert len(lines) == 1
    return code, json.loads(lines[0])


def test_verify_valid_json_shape(capsys: pytest.CaptureFixture[str], nitro: Path) -> None:
    code, data = run_json(capsys, "verify", str(nitro / BLOCKY), "--at", "document")
    assert code == 0
    assert set(data) == {
        "valid",
        "module_id",
        "timestamp",
        "pcrs",
        "public_key",
        "user_data",
        "nonce",
    }
    assert data["valid"] is True
    assert data["module_id"] == "i-0a22e5c5f24d22174-enc0191cceb4289903f"
    assert data["timestamp"] == "2024-09-07T14:37:39.545000+00:00"
    assert data["pcrs"]["0"] == PCR0 and len(data["pcrs"]) == 16
    assert len(base64.b64decode(data["nonce"])) == 1024


def test_verify_nulls_in_json(capsys: pytest.CaptureFixture[str], nitro: Path) -> None:
    code, data = run_json(
        capsys, "verify", str(nitro / "evervault-beta-valid.cose"), "--at", "document"
    )
    assert code == 0 and data["public_key"] is None and data["user_data"] is None


def test_verify_expired_now_is_invalid(capsys: pytest.CaptureFixture[str], nitro: Path) -> None:
    code, data = run_json(capsys, "verify", str(nitro / BLOCKY))
    assert code == 1
    assert data["valid"] is False and data["error"] == "CertificateExpiredError"
    assert "not valid" in data["message"]


def test_verify_text_output(capsys: pytest.CaptureFixture[str], nitro: Path) -> None:
    code, out, _ = run(capsys, "verify", str(nitro / BLOCKY), "--at", "document")
    assert code == 0 and out.startswith("VALID") and PCR0 in out
    code, out, _ = run(capsys, "verify", str(nitro / "invalid-trailing-bytes.cose"))
    assert code == 1 and out.startswith("INVALID: MalformedDocumentError")


def test_debug_rejected_unless_allowed(capsys: pytest.CaptureFixture[str], nitro: Path) -> None:
    code, data = run_json(capsys, "verify", str(nitro / DEBUG), "--at", "document")
    assert code == 1 and data["error"] == "PolicyError"
    code, _, err = run(capsys, "verify", str(nitro / DEBUG), "--at", "document", "--allow-debug")
    assert code == 0 and "warning: UnsafeNoOp" in err


def test_pcr_nonce_and_age(capsys: pytest.CaptureFixture[str], nitro: Path) -> None:
    doc = str(nitro / BLOCKY)
    assert run_json(capsys, "verify", doc, "--at", "document", "--pcr", f"0={PCR0.upper()}")[0] == 0
    code, data = run_json(capsys, "verify", doc, "--at", "document", "--pcr", "1=" + "00" * 48)
    assert code == 1 and data["error"] == "MeasurementMismatchError"
    code, data = run_json(capsys, "verify", doc, "--at", "document", "--nonce", "00" * 4)
    assert code == 1 and data["error"] == "PolicyError"
    later = "2024-09-07T15:37:39Z"
    code, data = run_json(capsys, "verify", doc, "--at", later, "--max-age", "60")
    assert code == 1 and data["error"] == "StaleDocumentError"
    assert run_json(capsys, "verify", doc, "--at", later, "--max-age", "7200")[0] == 0


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["verify"],
        ["frobnicate"],
        ["verify", "x.cose", "--pcr", "0=zz"],
        ["verify", "x.cose", "--pcr", "32=" + "00" * 48],
        ["verify", "x.cose", "--pcr", "nonsense"],
        ["verify", "x.cose", "--at", "2024-09-07T14:37:39"],  # no timezone
        ["verify", "x.cose", "--at", "yesterday"],
        ["verify", "x.cose", "--nonce", "xyz"],
        ["verify", "x.cose", "--max-age", "-5"],
    ],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert main(argv) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_file_errors_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, nitro: Path
) -> None:
    code, _, err = run(capsys, "verify", str(tmp_path / "missing.cose"))
    assert code == 2 and "cannot read" in err
    code, _, err = run(capsys, "verify", str(nitro / BLOCKY), "--root", str(tmp_path / "no.pem"))
    assert code == 2
    (tmp_path / "bad.pem").write_text("not a pem")
    code, _, err = run(capsys, "verify", str(nitro / BLOCKY), "--root", str(tmp_path / "bad.pem"))
    assert code == 2 and "PEM" in err
    assert run(capsys, "report", str(tmp_path / "nope"))[0] == 2
    assert run(capsys, "inspect", str(tmp_path))[0] == 2  # a directory


@pytest.mark.parametrize("form", ["raw", "base64", "hex", "base64-lines", "urlsafe"])
def test_input_forms(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, nitro: Path, form: str
) -> None:
    data = (nitro / BLOCKY).read_bytes()
    encoded = {
        "raw": data,
        "base64": base64.b64encode(data),
        "hex": data.hex().upper().encode() + b"\n",
        "base64-lines": base64.encodebytes(data),
        "urlsafe": base64.urlsafe_b64encode(data).rstrip(b"="),
    }[form]
    path = tmp_path / "doc.txt"
    path.write_bytes(encoded)
    assert run_json(capsys, "verify", str(path), "--at", "document")[0] == 0


def test_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, nitro: Path
) -> None:
    data = base64.b64encode((nitro / BLOCKY).read_bytes())
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert run_json(capsys, "verify", "-", "--at", "document")[0] == 0


def test_garbage_input_is_invalid_not_a_crash(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for content in (b"", b"hello world", b"\xff" * 10, b"A" * 100_000):
        path = tmp_path / "junk"
        path.write_bytes(content)
        code, data = run_json(capsys, "verify", str(path))
        assert code == 1 and data["error"] == "MalformedDocumentError"


def test_extra_root_for_test_pki(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pki = mini_pki()
    doc, pem = tmp_path / "minted.cose", tmp_path / "root.pem"
    doc.write_bytes(pki.document())
    pem.write_bytes(pki.root.public_bytes(Encoding.PEM))
    at = T0.isoformat()
    code, data = run_json(capsys, "verify", str(doc), "--at", at)
    assert code == 1 and data["error"] == "CertificateChainError"
    assert run_json(capsys, "verify", str(doc), "--at", at, "--root", str(pem))[0] == 0


def test_inspect(capsys: pytest.CaptureFixture[str], nitro: Path) -> None:
    code, out, err = run(capsys, "inspect", str(nitro / BLOCKY), "--json")
    assert code == 0 and "NOT VERIFIED" in err
    data = json.loads(out)
    assert data["verified"] is False and data["pcrs"]["0"] == PCR0
    # inspect decodes what verify rejects: a tampered document still shows, with the banner.
    code, out, err = run(capsys, "inspect", str(nitro / "invalid-tampered-payload-pcr0.cose"))
    assert code == 0 and "NOT VERIFIED" in err and "module_id" in out
    code, out, err = run(capsys, "inspect", str(nitro / "invalid-not-an-array.cose"))
    assert code == 1 and "NOT VERIFIED" in err and "MalformedDocumentError" in out


def test_report_on_fixtures(capsys: pytest.CaptureFixture[str], nitro: Path) -> None:
    code, out, _ = run(capsys, "report", str(nitro))
    assert code == 0
    lines = {
        line.split()[0]: line for line in out.splitlines() if line.endswith(("prod", "debug", "-"))
    }
    assert "valid" in lines[BLOCKY].split() and lines[BLOCKY].endswith("prod")
    assert lines[DEBUG].endswith("debug")
    assert "SignatureError" in lines["invalid-tampered-payload-pcr0.cose"]
    assert "MalformedDocumentError" in lines["invalid-trailing-bytes.cose"]
    assert "all as expected" in out


def test_report_detects_a_wrong_expectation(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, nitro: Path
) -> None:
    shutil.copy(nitro / BLOCKY, tmp_path / BLOCKY)
    shutil.copy(nitro / "invalid-trailing-bytes.cose", tmp_path / "invalid-trailing-bytes.cose")
    index = [
        {"file": BLOCKY, "kind": "genuine"},
        {"file": "invalid-trailing-bytes.cose", "kind": "genuine"},  # wrong on purpose
    ]
    (tmp_path / "INDEX.json").write_text(json.dumps(index))
    code, out, _ = run(capsys, "report", str(tmp_path))
    assert code == 1 and "MISMATCH" in out
    index[1]["kind"] = "invalid (derived)"
    (tmp_path / "INDEX.json").write_text(json.dumps(index))
    assert run(capsys, "report", str(tmp_path))[0] == 0


def test_report_without_an_index_expects_every_document_to_be_valid(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, nitro: Path
) -> None:
    shutil.copy(nitro / BLOCKY, tmp_path / BLOCKY)
    assert run(capsys, "report", str(tmp_path))[0] == 0
    (tmp_path / "junk.cose").write_bytes(b"\x84 not a document")
    code, out, _ = run(capsys, "report", str(tmp_path))
    assert code == 1 and "MISMATCH" in out


def test_parser_is_extensible() -> None:
    parser = build_parser()
    args = parser.parse_args(["report", "somewhere"])
    assert callable(args.handler)


def test_module_and_console_script(nitro: Path) -> None:
    doc = str(nitro / BLOCKY)
    proc = subprocess.run(
        [sys.executable, "-m", "attestation", "verify", doc, "--at", "document", "--json"],
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 0 and json.loads(proc.stdout)["valid"] is True
    script = Path(sys.executable).with_name("nitro-attest")
    if not script.exists():
        pytest.skip("nitro-attest console script is not installed in this environment")
    proc = subprocess.run([str(script), "verify", doc], capture_output=True, check=False)
    assert proc.returncode == 1 and b"CertificateExpiredError" in proc.stdout
    assert b"Traceback" not in proc.stderr
