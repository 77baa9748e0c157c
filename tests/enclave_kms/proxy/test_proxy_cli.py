"""``enclave-kms proxy``: vsock-proxy's positional form, flags, exit codes, hand-off commands."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from proxy_testkit import run, short_socket_dir

from enclave_kms.proxy import (
    Credentials,
    CredentialsReceiver,
    HandoffError,
    Proxy,
    Route,
    TcpEndpoint,
    VsockEndpoint,
    VsockUnavailableError,
    send_credentials,
)
from enclave_kms.proxy.cli import _check_allowlist, _routes, build_parser, main, register

ALLOW = "allowlist:\n- {address: kms.us-east-1.amazonaws.com, port: 443}\n"


def test_positional_form_is_vsock_proxys() -> None:
    args = build_parser().parse_args(
        ["-4", "-w", "8", "--config", "a.yaml", "8000", "kms.us-east-1.amazonaws.com", "443"]
    )
    assert args.ipv4 and not args.ipv6 and args.num_workers == 8 and args.config == "a.yaml"
    # vsock-proxy binds the parent's CID 3, not VMADDR_CID_ANY.
    assert _routes(args) == [
        Route(VsockEndpoint(3, 8000), TcpEndpoint("kms.us-east-1.amazonaws.com", 443))
    ]


def test_routes_and_positional_form_combine() -> None:
    args = build_parser().parse_args(
        ["--route", "tcp:0.0.0.0:8443=vsock:16:8443", "8000", "kms.example", "443"]
    )
    routes = _routes(args)
    assert [str(r) for r in routes] == [
        "tcp:0.0.0.0:8443=vsock:16:8443",
        "vsock:3:8000=tcp:kms.example:443",
    ]


def test_long_flags_and_defaults() -> None:
    args = build_parser().parse_args(["--ipv6", "--num_workers", "2", "1", "h", "2"])
    assert args.ipv6 and args.num_workers == 2
    assert args.config is None  # resolved to the vsock-proxy default when checked
    assert (args.max_connections, args.connect_timeout, args.dns_ttl) == (1024, 5.0, 30.0)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["-4", "-6", "8000", "kms.example", "443"], "not allowed with argument"),
        (["-w", "0", "8000", "kms.example", "443"], "must be at least 1"),
        (["8000", "kms.example", "70000"], "port must be in 1..65535"),
        (["8000", "kms.example"], "needs <local_port> <remote_addr> <remote_port>"),
        ([], "give <local_port> <remote_addr> <remote_port> or --route"),
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["8000", "19", "443"], "use an upstream of the form vsock:19:PORT"),
        (["8000", "kms.us-west-2.amazonaws.com", "443"], "The given address and port are not"),
        (["8000", "kms.us-east-1.amazonaws.com", "80"], "The given address and port are not"),
        (["--route", "tcp:1.2.3.4=tcp:x:1"], "expected tcp:HOST:PORT"),
    ],
)
def test_config_errors_exit_1_with_a_clear_message(
    argv: list[str], fragment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "vsock-proxy.yaml"
    config.write_text(ALLOW)
    assert main(["--config", str(config), *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("enclave-kms proxy: error: ")
    assert fragment in err
    assert "Traceback" not in err


def test_missing_allowlist_file_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--config", str(tmp_path / "absent.yaml"), "8000", "kms.example", "443"]
    assert main(argv) == 1
    assert "cannot read allowlist" in capsys.readouterr().err


def test_unsafe_skip_allowlist_warns() -> None:
    args = build_parser().parse_args(["--unsafe-skip-allowlist", "8000", "anything.example", "1"])
    with pytest.warns(UserWarning, match="UNSAFE"):
        _check_allowlist(args, _routes(args), socket.AF_UNSPEC)


def test_vsock_absent_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(socket, "AF_VSOCK", raising=False)
    proxy = Proxy([Route.parse("tcp:127.0.0.1:0=vsock:16:5000")])
    with pytest.raises(VsockUnavailableError, match="use tcp: or unix: endpoints"):
        run(proxy.start())


def test_register_passes_the_whole_command_line_through() -> None:
    top = argparse.ArgumentParser(prog="enclave-kms")
    register(top.add_subparsers(dest="command", required=True))
    args = top.parse_args(["proxy", "-4", "-w", "0", "8000", "kms.example", "443"])
    assert args.proxy_argv == ["-4", "-w", "0", "8000", "kms.example", "443"]
    assert args.handler(args) == 2  # parsed by main(): -w 0 is a usage error


def test_cli_relays_and_stops_cleanly_on_sigterm() -> None:
    upstream = socket.socket()
    upstream.bind(("127.0.0.1", 0))
    upstream.listen(1)
    upstream.settimeout(20)  # never leave a thread blocked in accept if the test fails

    def echo_once() -> None:
        conn, _ = upstream.accept()
        with conn:
            conn.sendall(conn.recv(100).upper())

    thread = threading.Thread(target=echo_once, daemon=True)
    thread.start()
    port = upstream.getsockname()[1]
    with short_socket_dir() as directory:
        listen = os.path.join(directory, "p.sock")
        process = subprocess.Popen(
            [sys.executable, "-m", "enclave_kms.proxy", "--unsafe-skip-allowlist",
             "--route", f"unix:{listen}=tcp:127.0.0.1:{port}"],
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            with socket.socket(socket.AF_UNIX) as client:
                client.settimeout(5)
                # The socket file appears at bind(), a moment before listen(): retry until the
                # proxy accepts (it is busy starting, not refusing).
                deadline = time.monotonic() + 20
                while True:
                    assert process.poll() is None, process.stderr.read()  # type: ignore[union-attr]
                    try:
                        client.connect(listen)
                        break
                    except (FileNotFoundError, ConnectionRefusedError):
                        assert time.monotonic() < deadline, "the proxy did not start"
                        time.sleep(0.02)
                client.sendall(b"through the cli")
                assert client.recv(100) == b"THROUGH THE CLI"
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    thread.join(5)
    upstream.close()
    assert process.returncode == 0
    assert "UNSAFE" in err
    assert "stopped total=1" in err
    assert "Traceback" not in err


SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY0"
TOKEN = "FwoGZXIvYXdzEXAMPLESESSIONTOKENVALUE"


@pytest.fixture
def env_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials in the environment, the first link of boto3's default chain."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ASIAEXAMPLEKEYID0001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.mark.usefixtures("env_credentials")
def test_send_credentials_command(capsys: pytest.CaptureFixture[str]) -> None:
    received: list[Credentials] = []
    with short_socket_dir() as directory:
        path = os.path.join(directory, "c.sock")
        with CredentialsReceiver(f"unix:{path}", timeout=5) as receiver:
            thread = threading.Thread(
                target=lambda: received.append(receiver.receive()), daemon=True
            )
            thread.start()
            assert main(["send-credentials", "--to", f"unix:{path}", "--region", "us-east-2"]) == 0
            thread.join(5)
    assert received == [Credentials("ASIAEXAMPLEKEYID0001", SECRET, TOKEN, "us-east-2")]
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err


@pytest.mark.usefixtures("env_credentials")
def test_send_credentials_unreachable_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    with short_socket_dir() as directory:
        assert main(["send-credentials", "--to", f"unix:{directory}/none.sock"]) == 1
    assert "cannot connect" in capsys.readouterr().err


def test_receive_credentials_command_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    creds = Credentials("ASIAEXAMPLEKEYID0001", SECRET, TOKEN, "eu-west-1")
    with short_socket_dir() as directory:
        path = os.path.join(directory, "r.sock")
        argv = ["receive-credentials", "--listen", f"unix:{path}", "--timeout", "5"]
        codes: list[int] = []
        thread = threading.Thread(
            target=lambda: codes.append(main([*argv, "--format", "json"])), daemon=True
        )
        thread.start()
        deadline = time.monotonic() + 20
        while True:  # the receiver starts in the thread: retry until it listens
            try:
                send_credentials(f"unix:{path}", creds, timeout=5)
                break
            except HandoffError:
                assert time.monotonic() < deadline, "the receiver did not start"
                time.sleep(0.02)
        thread.join(5)
    assert codes == [0]
    assert json.loads(capsys.readouterr().out) == creds.environment()
