"""The /dev/nsm transport, tested at the ioctl boundary with an injected fake ioctl."""

from __future__ import annotations

import ctypes
import errno
from datetime import UTC, datetime
from pathlib import Path

import cbor2
import pytest

from attestation.nsm import (
    ErrorCode,
    Nsm,
    NsmDevice,
    NsmError,
    NsmUnavailableError,
    open_default_nsm,
)
from attestation.nsm.device import NSM_IOCTL_REQUEST, NsmMessage
from attestation.testing.nsm import SimulatedNsm
from attestation.testing.pki import TestPki


class FakeIoctl:
    """Reads the request out of the iovec and writes a response the way the driver does."""

    def __init__(self, responder) -> None:  # type: ignore[no-untyped-def]
        self.responder = responder
        self.calls: list[tuple[int, int, bytes, int]] = []

    def __call__(self, fd: int, request: int, msg: NsmMessage) -> int:
        req = ctypes.string_at(msg.request.iov_base, msg.request.iov_len)
        self.calls.append((fd, request, req, msg.response.iov_len))
        resp = self.responder(req)
        assert len(resp) <= msg.response.iov_len
        ctypes.memmove(msg.response.iov_base, resp, len(resp))
        msg.response.iov_len = len(resp)
        return 0


def test_ioctl_code_and_message_layout() -> None:
    assert ctypes.sizeof(NsmMessage) == 32  # two iovecs on 64-bit
    assert NSM_IOCTL_REQUEST == 0xC0200A00


def test_send_passes_request_and_a_12288_byte_response_buffer() -> None:
    fake = FakeIoctl(lambda req: cbor2.dumps("LockPCR"))
    device = NsmDevice(7, ioctl=fake)
    raw = cbor2.dumps({"LockPCR": {"index": 16}})
    assert device.send(raw) == cbor2.dumps("LockPCR")
    assert fake.calls == [(7, 0xC0200A00, raw, 12288)]


def test_request_over_4096_bytes_never_reaches_the_device() -> None:
    fake = FakeIoctl(lambda req: b"")
    with pytest.raises(NsmError) as info:
        NsmDevice(3, ioctl=fake).send(b"\x00" * 4097)
    assert info.value.code is ErrorCode.InputTooLarge
    assert fake.calls == []


@pytest.mark.parametrize(
    ("err", "code"),
    [(errno.EMSGSIZE, ErrorCode.InputTooLarge), (errno.EIO, ErrorCode.InternalError)],
)
def test_errno_mapping(err: int, code: ErrorCode) -> None:
    def failing(fd: int, request: int, msg: NsmMessage) -> int:
        raise OSError(err, "boom")

    with pytest.raises(NsmError) as info:
        NsmDevice(3, ioctl=failing).send(b"\x60")
    assert info.value.code is code


def test_client_over_device_over_simulator_end_to_end() -> None:
    pki = TestPki.create(5, valid_from=datetime(2025, 1, 1, tzinfo=UTC))
    sim = SimulatedNsm(pki, clock=lambda: datetime(2025, 1, 1, 6, tzinfo=UTC))
    fake = FakeIoctl(sim.send)
    nsm = Nsm(NsmDevice(3, ioctl=fake))
    assert nsm.describe_nsm().max_pcrs == 32
    document = nsm.get_attestation_doc(nonce=b"n" * 1024, user_data=b"u" * 1024)
    assert document.startswith(bytes.fromhex("8444a1013822a059"))
    assert all(call[3] == 12288 for call in fake.calls)


def test_open_default_nsm_without_device_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NsmUnavailableError, match="not running inside a Nitro Enclave"):
        open_default_nsm(tmp_path / "nsm")


def test_device_close_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "fake-nsm"
    path.write_bytes(b"")
    device = NsmDevice.open(path)
    with device:
        pass
    device.close()
