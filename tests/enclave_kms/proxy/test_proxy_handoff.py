"""Credentials hand-off (kmstool-instance's SetClient) over a unix socket."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Iterator

import pytest
from proxy_testkit import short_socket_dir

from enclave_kms.proxy import (
    Credentials,
    CredentialsReceiver,
    HandoffError,
    receive_credentials,
    send_credentials,
)

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY0"
TOKEN = "FwoGZXIvYXdzEXAMPLESESSIONTOKENVALUE" * 20
CREDS = Credentials("ASIAEXAMPLEKEYID0001", SECRET, TOKEN, "eu-west-1")


@pytest.fixture
def sock_path() -> Iterator[str]:
    with short_socket_dir() as directory:
        yield os.path.join(directory, "creds.sock")


def receive_in_thread(receiver: CredentialsReceiver) -> dict[str, object]:
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["credentials"] = receiver.receive()
        except HandoffError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    outcome["thread"] = thread
    return outcome


def raw_exchange(path: str, payload: bytes) -> dict[str, object]:
    """Send raw bytes as a parent would and return the decoded reply."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(path)
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    assert reply.endswith(b"\0")
    return json.loads(reply[:-1])  # type: ignore[no-any-return]


def test_round_trip(sock_path: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with CredentialsReceiver(f"unix:{sock_path}", timeout=5) as receiver:
        outcome = receive_in_thread(receiver)
        reply = send_credentials(f"unix:{sock_path}", CREDS, timeout=5)
        outcome["thread"].join(5)  # type: ignore[attr-defined]
    assert reply.status == "Ok"
    assert outcome["credentials"] == CREDS
    assert SECRET not in caplog.text and TOKEN not in caplog.text
    assert "ASIA...0001" in caplog.text  # the key id is logged masked


def test_round_trip_without_token_or_region(sock_path: str) -> None:
    creds = Credentials("AKIAEXAMPLEKEYID0002", SECRET)
    with CredentialsReceiver(f"unix:{sock_path}", timeout=5) as receiver:
        outcome = receive_in_thread(receiver)
        send_credentials(f"unix:{sock_path}", creds, timeout=5)
        outcome["thread"].join(5)  # type: ignore[attr-defined]
    assert outcome["credentials"] == creds


def test_wire_format_is_kmstools(sock_path: str) -> None:
    message = {
        "Operation": "SetClient",
        "AwsAccessKeyId": "ASIAEXAMPLEKEYID0001",
        "AwsSecretAccessKey": SECRET,
        "AwsSessionToken": TOKEN,
        "AwsRegion": "eu-west-1",
    }
    with CredentialsReceiver(f"unix:{sock_path}", timeout=5) as receiver:
        outcome = receive_in_thread(receiver)
        reply = raw_exchange(sock_path, json.dumps(message).encode() + b"\0")
        outcome["thread"].join(5)  # type: ignore[attr-defined]
    assert reply == {"Status": "Ok"}
    assert outcome["credentials"] == CREDS


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b"not json\0", "not valid UTF-8 JSON"),
        (b"\xff\xfe\0", "not valid UTF-8 JSON"),
        (b"[1, 2]\0", "not a JSON object"),
        (b'{"Operation":"Decrypt"}\0', "only SetClient"),
        (b'{"Operation":"SetClient","AwsAccessKeyId":"ASIAEXAMPLEKEYID0001"}\0',
         "AwsSecretAccessKey must be a non-empty string"),
        (b'{"Operation":"SetClient","AwsAccessKeyId":"short","AwsSecretAccessKey":"s"}\0',
         "not an AWS access key id"),
        (b'{"Operation":"SetClient","AwsAccessKeyId":"ASIAEXAMPLEKEYID0001",'
         b'"AwsSecretAccessKey":"s","AwsRegion":"Not A Region"}\0', "AwsRegion"),
        (b'{"Operation":"SetClient","AwsAccessKeyId":"ASIAEXAMPLEKEYID0001",'
         b'"AwsSecretAccessKey":"s","Extra":1}\0', "unknown field"),
        (b'{"Operation":"SetClient"', "closed in the middle of a message"),
        (b'{"Operation":"SetClient","AwsSecretAccessKey":"' + b"x" * 5000 + b'"}\0',
         "exceeds 1024 bytes"),
    ],
)  # fmt: skip
def test_malformed_messages_get_an_error_reply_and_a_typed_error(
    sock_path: str, payload: bytes, fragment: str
) -> None:
    with CredentialsReceiver(f"unix:{sock_path}", timeout=5, max_message_size=1024) as receiver:
        outcome = receive_in_thread(receiver)
        reply = raw_exchange(sock_path, payload)
        outcome["thread"].join(5)  # type: ignore[attr-defined]
    assert reply["Status"] == "Error"
    assert fragment in str(reply["Message"])
    assert isinstance(outcome["error"], HandoffError)
    assert fragment in str(outcome["error"])


def test_error_messages_never_echo_secret_values(sock_path: str) -> None:
    # A malformed region next to a real secret: the error names the field, not the values.
    message = {
        "Operation": "SetClient",
        "AwsAccessKeyId": "ASIAEXAMPLEKEYID0001",
        "AwsSecretAccessKey": SECRET,
        "AwsSessionToken": TOKEN,
        "AwsRegion": SECRET,
    }
    with CredentialsReceiver(f"unix:{sock_path}", timeout=5) as receiver:
        outcome = receive_in_thread(receiver)
        reply = raw_exchange(sock_path, json.dumps(message).encode() + b"\0")
        outcome["thread"].join(5)  # type: ignore[attr-defined]
    assert SECRET not in str(reply) and SECRET not in str(outcome["error"])


def test_sender_raises_on_error_reply(sock_path: str) -> None:
    bad = Credentials("lowercase-is-not-a-key-id", SECRET, TOKEN)
    with CredentialsReceiver(f"unix:{sock_path}", timeout=5) as receiver:
        outcome = receive_in_thread(receiver)
        with pytest.raises(HandoffError, match=r"refused the credentials.*AwsAccessKeyId"):
            send_credentials(f"unix:{sock_path}", bad, timeout=5)
        outcome["thread"].join(5)  # type: ignore[attr-defined]


def test_sender_raises_on_malformed_reply(sock_path: str) -> None:
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(sock_path)
        server.listen(1)

        def answer() -> None:
            conn, _ = server.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(b'{"Status":"Maybe"}\0')

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        with pytest.raises(HandoffError, match="neither Ok nor Error"):
            send_credentials(f"unix:{sock_path}", CREDS, timeout=5)
        thread.join(5)


def test_sender_connection_failure_is_typed(sock_path: str) -> None:
    with pytest.raises(HandoffError, match="cannot connect"):
        send_credentials(f"unix:{sock_path}", CREDS, timeout=1)


def test_receive_times_out_with_a_typed_error(sock_path: str) -> None:
    with pytest.raises(HandoffError, match="before the timeout"):
        receive_credentials(f"unix:{sock_path}", timeout=0.1)


def test_repr_hides_secret_and_token() -> None:
    text = repr(CREDS)
    assert SECRET not in text and TOKEN not in text
    assert "<hidden>" in text and "eu-west-1" in text
    assert "session_token=None" in repr(Credentials("AKIAEXAMPLEKEYID0002", SECRET))


def test_environment_exports() -> None:
    env = CREDS.environment()
    assert env["AWS_SECRET_ACCESS_KEY"] == SECRET
    assert env["AWS_SESSION_TOKEN"] == TOKEN
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"


def test_from_boto3_reads_the_default_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ASIAEXAMPLEKEYID0001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    assert Credentials.from_boto3(region="eu-west-1") == CREDS


def test_from_boto3_without_credentials_is_a_typed_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(HandoffError, match="no AWS credentials"):
        Credentials.from_boto3(region="eu-west-1")
