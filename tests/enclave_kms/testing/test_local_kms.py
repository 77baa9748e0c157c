"""enclave_kms.testing.LocalKms: a real ``enclave-kms serve`` subprocess for application tests."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from attestation.nsm import Nsm
from attestation.testing.nsm import SimulatedNsm
from attestation.testing.pki import TestPki
from enclave_kms.enclave import EnclaveSession
from enclave_kms.testing import LocalCredentials, LocalKms, LocalKmsError, _local

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return TestPki.create(0x10CA1, valid_from=datetime.now(UTC) - timedelta(hours=1))


@pytest.fixture(scope="module")
def kms(pki: TestPki) -> Iterator[LocalKms]:
    with LocalKms(trust_roots=[pki.root], principals=("root", "user/bob")) as server:
        yield server


def test_an_enclave_session_gets_its_data_key_through_recipient(
    kms: LocalKms, pki: TestPki
) -> None:
    client = kms.client()
    key_id = client.create_key()["KeyMetadata"]["KeyId"]
    session = EnclaveSession(nsm=Nsm(SimulatedNsm(pki)), kms_client=client)
    data_key = session.generate_data_key(key_id)
    decrypted = session.decrypt(data_key.ciphertext_blob)
    assert len(data_key.plaintext) == 32
    assert decrypted.plaintext == data_key.plaintext
    assert decrypted.key_id.endswith(key_id)


def test_a_document_from_an_untrusted_pki_is_refused(kms: LocalKms) -> None:
    stranger = TestPki.create(0xBAD, valid_from=datetime.now(UTC) - timedelta(hours=1))
    client = kms.client()
    key_id = client.create_key()["KeyMetadata"]["KeyId"]
    session = EnclaveSession(nsm=Nsm(SimulatedNsm(stranger)), kms_client=client)
    with pytest.raises(Exception, match="AccessDeniedException"):
        session.generate_data_key(key_id)


def test_each_principal_is_its_own_identity(kms: LocalKms) -> None:
    key_id = kms.client().create_key()["KeyMetadata"]["KeyId"]
    # The default key policy admits the account root only.
    with pytest.raises(ClientError) as caught:
        kms.client("user/bob").generate_data_key(KeyId=key_id, KeySpec="AES_256")
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "user/bob" in caught.value.response["Error"]["Message"]


def test_credentials_are_generated_fresh_and_stored_privately(kms: LocalKms) -> None:
    ids = [c.access_key_id for c in kms.credentials]
    assert len(set(ids)) == 2
    assert all(re.fullmatch(r"AKIA[A-Z2-7]{16}", i) for i in ids)
    assert LocalCredentials.generate() != LocalCredentials.generate()
    mode = stat.S_IMODE((kms.workdir / "credentials.json").stat().st_mode)
    assert mode == 0o600
    assert kms.credentials[0].secret_access_key not in repr(kms.credentials[0])


def test_the_aws_cli_works_from_the_environment(kms: LocalKms) -> None:
    aws = shutil.which("aws") or str(Path(sys.executable).parent / "aws")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(kms.workdir), **kms.environment()}
    out = subprocess.run(
        [aws, "kms", "create-key", "--description", "from the cli", "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert '"Description": "from the cli"' in out.stdout


def test_stop_ends_the_process_and_removes_the_temporary_directory() -> None:
    server = LocalKms().start()
    port, workdir = server.port, server.workdir
    assert server.running
    server.stop()
    assert not server.running
    assert not workdir.exists()
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port)):
        pass
    with pytest.raises(LocalKmsError, match="not running"):
        _ = server.endpoint_url
    server.stop()  # a second stop is harmless


def test_a_server_that_cannot_start_says_why_without_its_secrets(tmp_path: Path) -> None:
    server = LocalKms(workdir=tmp_path, extra_args=["--max-body-bytes", "-1"])
    with pytest.raises(LocalKmsError, match="exited with code") as caught:
        server.start()
    message = str(caught.value)
    assert "max" in message.lower() and "body" in message.lower()  # the log's reason
    assert server.credentials[0].secret_access_key not in message
    assert not server.running


def test_a_port_taken_before_the_server_binds_it_is_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = [taken.getsockname()[1]]
        real = _local.free_loopback_port
        monkeypatch.setattr(_local, "free_loopback_port", lambda: ports.pop() if ports else real())
        with LocalKms() as server:
            assert server.port != taken.getsockname()[1]
            assert server.client().list_keys()["Keys"] == []
            # The lost attempt is in the log, for whoever wonders why start took longer.
            assert "address already in use" in server.log_path.read_text().lower()


def test_a_server_that_died_during_the_test_fails_the_block() -> None:
    with pytest.raises(LocalKmsError, match="had died"), LocalKms() as server:
        os.kill(server.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while server.running and time.monotonic() < deadline:
            time.sleep(0.02)


def test_no_credentials_is_refused() -> None:
    with pytest.raises(ValueError, match="principal"):
        LocalKms(principals=())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LocalKms()  # constructing starts nothing and warns about nothing


def test_settings_in_the_callers_environment_do_not_reach_the_server(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A developer's shell pointing at a real store must not redirect a throwaway server.
    monkeypatch.setenv("ENCLAVE_KMS_STORE_URL", "postgresql://prod.invalid:5432/kms")
    monkeypatch.setenv("ENCLAVE_KMS_REGION", "eu-west-3")
    with LocalKms(workdir=tmp_path) as server:
        arn = server.client().create_key()["KeyMetadata"]["Arn"]
        assert arn.startswith("arn:aws:kms:us-east-1:")
        assert any(server.data_dir.glob("*.sqlite3"))
    # What env sets does reach it: here a body limit far below a 2 KiB request.
    with LocalKms(env={"ENCLAVE_KMS_MAX_BODY_BYTES": "1024"}) as server:
        with pytest.raises(ClientError) as caught:
            server.client().create_key(Description="x" * 2048)
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413


def test_temporary_credentials_need_their_session_token(tmp_path: Path) -> None:
    temporary = LocalCredentials("AKIAENCLAVETEMPORARY", "test-only-secret", "role/app", "tok")
    with LocalKms(credentials=[temporary], workdir=tmp_path) as server:
        assert server.client().list_keys()["Keys"] == []
        assert server.environment()["AWS_SESSION_TOKEN"] == "tok"
        tokenless = boto3.client(
            "kms",
            endpoint_url=server.endpoint_url,
            region_name=server.region,
            aws_access_key_id=temporary.access_key_id,
            aws_secret_access_key=temporary.secret_access_key,
        )
        with pytest.raises(ClientError) as caught:
            tokenless.list_keys()
        assert caught.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_a_port_answered_by_another_server_is_not_taken_for_ours(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with LocalKms() as other:
        ports = [other.port]
        real = _local.free_loopback_port
        monkeypatch.setattr(_local, "free_loopback_port", lambda: ports.pop() if ports else real())
        # The other server answers /healthz on the port ours was given, but not to our keys.
        with LocalKms() as ours:
            assert ours.port != other.port
            assert ours.client().list_keys()["Keys"] == []
        assert other.running


def _group_members(pgid: int) -> list[int]:
    members = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat_file.parent.name))
    return members


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_workers_do_not_outlive_a_leader_that_died(tmp_path: Path) -> None:
    server = LocalKms(workdir=tmp_path, extra_args=["--workers", "2"]).start()
    pgid = server.pid
    deadline = time.monotonic() + 30
    while len(_group_members(pgid)) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)  # the supervisor and both workers
    os.kill(pgid, signal.SIGKILL)
    time.sleep(0.2)
    assert not server.running
    server.stop()
    deadline = time.monotonic() + 10  # SIGKILL is delivered asynchronously
    while _group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _group_members(pgid) == []


def test_the_credentials_file_is_private_even_in_a_reused_workdir(tmp_path: Path) -> None:
    creds = tmp_path / "credentials.json"
    creds.write_text("{}")
    creds.chmod(0o644)
    decoy = tmp_path / "decoy"
    decoy.write_text("keep me")
    with LocalKms(workdir=tmp_path) as server:
        assert stat.S_IMODE(creds.stat().st_mode) == 0o600
        assert server.client().list_keys()["Keys"] == []
    creds.unlink()
    creds.symlink_to(decoy)  # a planted link is replaced, not followed
    with LocalKms(workdir=tmp_path):
        assert decoy.read_text() == "keep me"
        assert not creds.is_symlink()


def test_settings_in_the_environment_are_stripped_whatever_their_case(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("enclave_kms_store_url", "postgresql://prod.invalid:5432/kms")
    with LocalKms(workdir=tmp_path) as server:
        assert server.client().list_keys()["Keys"] == []
        assert any(server.data_dir.glob("*.sqlite3"))


def test_tls_serves_https_that_trusts_its_own_ca_only(pki: TestPki) -> None:
    import json

    from botocore.exceptions import SSLError

    root = "arn:aws:iam::111122223333:root"
    deny_without_tls = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": root}, "Action": "kms:*",
                 "Resource": "*"},
                {"Effect": "Deny", "Principal": "*", "Action": "kms:GenerateDataKey",
                 "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
            ],
        }
    )  # fmt: skip
    with LocalKms(trust_roots=[pki.root], tls=True) as server:
        assert server.endpoint_url.startswith("https://127.0.0.1:")
        assert server.ca_bundle is not None
        assert stat.S_IMODE((server.ca_bundle.parent / "server.key").stat().st_mode) == 0o600
        client = server.client()
        key_id = client.create_key(Policy=deny_without_tls)["KeyMetadata"]["KeyId"]
        # The enclave SDK over HTTPS; the policy sees aws:SecureTransport true.
        session = EnclaveSession(nsm=Nsm(SimulatedNsm(pki)), kms_client=client)
        data_key = session.generate_data_key(key_id)
        assert session.decrypt(data_key.ciphertext_blob).plaintext == data_key.plaintext
        # The AWS CLI trusts the CA through AWS_CA_BUNDLE.
        aws = shutil.which("aws") or str(Path(sys.executable).parent / "aws")
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(server.workdir)}
        out = subprocess.run(
            [aws, "kms", "list-keys", "--output", "json"],
            env={**env, **server.environment()},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        assert key_id in out.stdout
        # A client that trusts only the public CAs refuses the certificate.
        with pytest.raises(SSLError):
            server.client(verify=True).list_keys()
    with LocalKms() as plain:
        assert plain.endpoint_url.startswith("http://") and plain.ca_bundle is None
