"""The ``/dev/nsm`` transport: one ioctl per request, as nsm-api's driver does it.

The device takes ``struct NsmMessage { struct iovec request; struct iovec response; }`` through
``ioctl(fd, _IOWR(0x0A, 0, sizeof(struct NsmMessage)), &msg)`` (``0xC0200A00`` on 64-bit) and
rewrites ``response.iov_len`` to the length it wrote (enclave-ecosystem.md §1.1).

Only this module touches the OS; everything else speaks bytes through :class:`NsmTransport`.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from attestation.nsm._protocol import (
    REQUEST_MAX_BYTES,
    RESPONSE_MAX_BYTES,
    ErrorCode,
    NsmError,
)
from attestation.nsm.client import Nsm

__all__ = [
    "DEFAULT_DEVICE",
    "NSM_IOCTL_REQUEST",
    "NsmDevice",
    "NsmMessage",
    "NsmUnavailableError",
    "open_default_nsm",
]

DEFAULT_DEVICE = "/dev/nsm"


class Iovec(ctypes.Structure):
    """``struct iovec``."""

    _fields_ = (("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t))


class NsmMessage(ctypes.Structure):
    """``struct NsmMessage { struct iovec request; struct iovec response; }``."""

    _fields_ = (("request", Iovec), ("response", Iovec))


def _iowr(type_: int, nr: int, size: int) -> int:
    # asm-generic/ioctl.h: dir(2 bits, READ|WRITE = 3) | size(14) | type(8) | nr(8).
    return (3 << 30) | (size << 16) | (type_ << 8) | nr


NSM_IOCTL_REQUEST = _iowr(0x0A, 0, ctypes.sizeof(NsmMessage))  # 0xC0200A00 on 64-bit

IoctlFunction = Callable[[int, int, NsmMessage], object]


class NsmUnavailableError(NsmError):
    """There is no NSM device: this process is not running inside a Nitro Enclave."""

    def __init__(self, detail: str) -> None:
        super().__init__(ErrorCode.InternalError, detail)


def _default_ioctl(fd: int, request: int, message: NsmMessage) -> object:
    import fcntl  # POSIX only; imported here so the module still imports elsewhere

    # mutate_flag=True: the kernel writes response.iov_len back into ``message``.
    return fcntl.ioctl(fd, request, message, True)


class NsmDevice:
    """An :class:`~attestation.nsm.NsmTransport` over an open ``/dev/nsm`` file descriptor.

    Args:
        fd: a read-write descriptor of the NSM device.
        ioctl: the ioctl function; injectable so the request encoding can be tested without a
            device. It receives ``(fd, NSM_IOCTL_REQUEST, message)`` and must update
            ``message.response.iov_len``.
    """

    def __init__(self, fd: int, *, ioctl: IoctlFunction = _default_ioctl) -> None:
        self._fd = fd
        self._ioctl = ioctl

    @classmethod
    def open(cls, path: str | os.PathLike[str] = DEFAULT_DEVICE) -> NsmDevice:
        """Open the device read-write.

        Raises:
            NsmUnavailableError: the device does not exist or cannot be opened.
        """
        try:
            fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise NsmUnavailableError(f"cannot open {os.fspath(path)}: {exc.strerror}") from exc
        return cls(fd)

    def send(self, request: bytes) -> bytes:
        """Run one request through the ioctl and return the response bytes.

        Raises:
            NsmError: ``InputTooLarge`` over 4096 bytes or on ``EMSGSIZE``; ``InternalError``
                for any other errno or an impossible response length (nsm-api's mapping).
        """
        if len(request) > REQUEST_MAX_BYTES:
            raise NsmError(ErrorCode.InputTooLarge, f"request is {len(request)} bytes")
        req_buf = ctypes.create_string_buffer(bytes(request), len(request))
        # QEMU rejects any response buffer that is not exactly 0x3000 bytes.
        resp_buf = ctypes.create_string_buffer(RESPONSE_MAX_BYTES)
        msg = NsmMessage(
            Iovec(ctypes.addressof(req_buf), len(request)),
            Iovec(ctypes.addressof(resp_buf), RESPONSE_MAX_BYTES),
        )
        try:
            self._ioctl(self._fd, NSM_IOCTL_REQUEST, msg)
        except OSError as exc:
            if exc.errno == errno.EMSGSIZE:
                raise NsmError(ErrorCode.InputTooLarge, "the device refused the size") from exc
            raise NsmError(ErrorCode.InternalError, f"ioctl failed: errno {exc.errno}") from exc
        length = msg.response.iov_len
        if length > RESPONSE_MAX_BYTES:
            raise NsmError(ErrorCode.InternalError, "response length exceeds the buffer")
        return resp_buf.raw[:length]

    def close(self) -> None:
        """Close the descriptor (idempotent)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> NsmDevice:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_default_nsm(path: str | os.PathLike[str] = DEFAULT_DEVICE) -> Nsm:
    """Return an :class:`~attestation.nsm.Nsm` client on the enclave's NSM device.

    Raises:
        NsmUnavailableError: ``path`` does not exist (not inside a Nitro Enclave). Tests should
            use ``attestation.testing.SimulatedNsm`` instead.
    """
    if not Path(path).exists():
        raise NsmUnavailableError(
            f"{os.fspath(path)} does not exist: not running inside a Nitro Enclave "
            "(use attestation.testing.SimulatedNsm in tests)"
        )
    return Nsm(NsmDevice.open(path))
