"""``nitro-attest mint`` through its handler, driven by a parser of our own."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cbor2
import pytest
from cryptography import x509

from attestation import Verifier, policy
from attestation.errors import SignatureError
from attestation.testing import _mint_cli

pytestmark = pytest.mark.filterwarnings("ignore::attestation.policy.UnsafePolicyWarning")


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="nitro-attest")
    _mint_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["mint", *argv])
    return int(args.handler(args))


def verify(pki_dir: Path, document: Path, *, at: str = "document"):  # type: ignore[no-untyped-def]
    root = x509.load_pem_x509_certificate((pki_dir / "root.pem").read_bytes())
    return Verifier(trusted_roots=[root]).verify(
        document.read_bytes(), policy=policy.UnsafeNoOp(), at=at
    )


def test_mint_then_verify_at_document_time(tmp_path: Path) -> None:
    pki_dir, out, spki = tmp_path / "pki", tmp_path / "doc.cose", tmp_path / "key.der"
    spki.write_bytes(b"\x30\x59" + bytes(89))
    pcr = "cd" * 48
    code = run(
        "--out", str(out), "--pki-dir", str(pki_dir), "--seed", "7", "--public-key", str(spki),
        "--pcr", f"3={pcr}", "--pcr", f"17={pcr}", "--nonce", "00ff", "--user-data", "6869",
        "--timestamp", "2026-05-04T03:02:01.5Z",
    )  # fmt: skip
    assert code == 0
    assert {p.name for p in pki_dir.iterdir()} == {"root.pem", "chain.pem", "pki.json"}
    result = verify(pki_dir, out)
    assert result.pcrs[3] == bytes.fromhex(pcr)
    assert sorted(result.pcrs) == [*range(16), 17]
    assert (result.nonce, result.user_data) == (b"\x00\xff", b"hi")
    assert result.public_key_der == spki.read_bytes()
    assert result.timestamp.isoformat() == "2026-05-04T03:02:01.500000+00:00"


def test_pki_dir_is_reused(tmp_path: Path) -> None:
    pki_dir = tmp_path / "pki"
    assert run("--out", str(tmp_path / "a"), "--pki-dir", str(pki_dir), "--timestamp", "1") == 0
    root = (pki_dir / "root.pem").read_bytes()
    assert run("--out", str(tmp_path / "b"), "--pki-dir", str(pki_dir), "--debug") == 0
    assert (pki_dir / "root.pem").read_bytes() == root
    assert verify(pki_dir, tmp_path / "b", at="now").pcrs[0] == bytes(48)
    # Another seed on an existing PKI is a usage error, not a silent new root.
    assert run("--out", str(tmp_path / "c"), "--pki-dir", str(pki_dir), "--seed", "9") == 2


def test_variant_option(tmp_path: Path) -> None:
    pki_dir, out = tmp_path / "pki", tmp_path / "bad.cose"
    assert run("--out", str(out), "--pki-dir", str(pki_dir), "--variant", "bad-signature") == 0
    with pytest.raises(SignatureError):
        verify(pki_dir, out)


def test_timestamp_in_ms(tmp_path: Path) -> None:
    out = tmp_path / "d"
    assert (
        run("--out", str(out), "--pki-dir", str(tmp_path / "p"), "--timestamp", "1700000000123")
        == 0
    )
    assert cbor2.loads(cbor2.loads(out.read_bytes())[2])["timestamp"] == 1700000000123


@pytest.mark.parametrize(
    "extra",
    [
        ["--pcr", "3=zz"],
        ["--pcr", "32=" + "00" * 48],
        ["--pcr", "3=00"],
        ["--pcr", "nope"],
        ["--nonce", "xyz"],
        ["--timestamp", "yesterday"],
        ["--public-key", "/nonexistent/key.der"],
        ["--seed", "-1"],
    ],
)
def test_usage_errors_exit_2(
    tmp_path: Path, extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("--out", str(tmp_path / "d"), "--pki-dir", str(tmp_path / "p"), *extra) == 2
    assert "nitro-attest mint:" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_non_pki_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "notes.txt").write_text("x")
    assert run("--out", str(tmp_path / "d"), "--pki-dir", str(tmp_path / "p")) == 2


def test_unknown_variant_is_an_argparse_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        run("--out", str(tmp_path / "d"), "--pki-dir", str(tmp_path / "p"), "--variant", "x")
    assert info.value.code == 2


def test_sidecar_json_is_parseable_for_cli_pki(tmp_path: Path) -> None:
    run("--out", str(tmp_path / "d"), "--pki-dir", str(tmp_path / "p"))
    params = json.loads((tmp_path / "p" / "pki.json").read_text())
    assert "DO NOT TRUST" in params["warning"]
