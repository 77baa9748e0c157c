"""Wire format of the credentials hand-off (kmstool-instance's): JSON objects ended by a 0 byte.

Request: ``{"Operation": "SetClient", "AwsAccessKeyId": ..., "AwsSecretAccessKey": ...,
"AwsSessionToken"?: ..., "AwsRegion"?: ...}``. Reply: ``{"Status": "Ok"|"Error", "Message"?: ...}``.

Every read is bounded; error messages name fields, never their values.
"""

from __future__ import annotations

import json
import re
import socket
from typing import Any

from ._sockets import new_vsock_socket
from .endpoints import Endpoint, TcpEndpoint, UnixEndpoint
from .errors import HandoffError

__all__ = [
    "DEFAULT_MAX_MESSAGE",
    "MessageReader",
    "connect_blocking",
    "encode",
    "validate_set_client",
]

#: Session tokens are a few KiB; 64 KiB bounds memory while leaving ample room.
DEFAULT_MAX_MESSAGE = 64 * 1024
SET_CLIENT_FIELDS = frozenset(
    {"Operation", "AwsAccessKeyId", "AwsSecretAccessKey", "AwsSessionToken", "AwsRegion"}
)
_ACCESS_KEY_ID = re.compile(r"[A-Z0-9]{16,128}")
_REGION = re.compile(r"[a-z]{2,}(-[a-z0-9]+)+")


def encode(message: dict[str, Any]) -> bytes:
    """One message on the wire. json escapes control characters, so no NUL can leak inside."""
    return json.dumps(message, separators=(",", ":")).encode("utf-8") + b"\0"


class MessageReader:
    """Reads 0-terminated JSON objects from a blocking socket, at most ``limit`` bytes each."""

    def __init__(self, sock: socket.socket, limit: int = DEFAULT_MAX_MESSAGE) -> None:
        self._sock = sock
        self._limit = limit
        self._buffer = bytearray()

    def read(self) -> dict[str, Any] | None:
        """The next message, or ``None`` on a clean EOF between messages.

        Raises:
            HandoffError: oversized, truncated, not UTF-8 JSON, or not an object; I/O error.
        """
        while True:
            end = self._buffer.find(b"\0")
            if end >= 0:
                raw = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                return self._decode(raw)
            if len(self._buffer) > self._limit:
                raise HandoffError(f"message exceeds {self._limit} bytes")
            try:
                chunk = self._sock.recv(min(65536, self._limit + 1))
            except TimeoutError as exc:
                raise HandoffError("timed out waiting for a message") from exc
            except OSError as exc:
                raise HandoffError(f"receive failed: {exc.strerror or exc}") from exc
            if not chunk:
                if self._buffer:
                    raise HandoffError("connection closed in the middle of a message")
                return None
            self._buffer += chunk

    def _decode(self, raw: bytes) -> dict[str, Any]:
        if len(raw) > self._limit:
            raise HandoffError(f"message exceeds {self._limit} bytes")
        try:
            message = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            # The position only: the text may hold a secret.
            raise HandoffError(f"message is not valid UTF-8 JSON (at byte {_pos(exc)})") from None
        if not isinstance(message, dict):
            raise HandoffError("message is not a JSON object")
        return message


def _pos(exc: UnicodeDecodeError | json.JSONDecodeError) -> int:
    return exc.start if isinstance(exc, UnicodeDecodeError) else exc.pos


def validate_set_client(message: dict[str, Any]) -> dict[str, str | None]:
    """Check a SetClient request; return its fields (secrets included, never logged).

    Raises:
        HandoffError: wrong operation, unknown or missing field, wrong type or format.
    """
    operation = message.get("Operation")
    if operation != "SetClient":
        shown = repr(operation)[:40] if isinstance(operation, str) else type(operation).__name__
        raise HandoffError(f"unsupported Operation {shown}; only SetClient is accepted")
    unknown = sorted(str(key)[:40] for key in set(message) - SET_CLIENT_FIELDS)
    if unknown:
        raise HandoffError(f"unknown field(s) in SetClient: {', '.join(unknown)}")
    fields: dict[str, str | None] = {}
    for name, required in (
        ("AwsAccessKeyId", True),
        ("AwsSecretAccessKey", True),
        ("AwsSessionToken", False),
        ("AwsRegion", False),
    ):
        value = message.get(name)
        if value is None and not required:
            fields[name] = None
            continue
        if not isinstance(value, str) or not value:
            raise HandoffError(f"SetClient field {name} must be a non-empty string")
        fields[name] = value
    if not _ACCESS_KEY_ID.fullmatch(fields["AwsAccessKeyId"] or ""):
        raise HandoffError("SetClient field AwsAccessKeyId is not an AWS access key id")
    region = fields["AwsRegion"]
    if region is not None and not _REGION.fullmatch(region):
        raise HandoffError("SetClient field AwsRegion is not a region name")
    return fields


def connect_blocking(endpoint: Endpoint, timeout: float) -> socket.socket:
    """A connected blocking socket with ``timeout`` on every operation.

    Raises:
        HandoffError: the connection failed.
        VsockUnavailableError: vsock requested where the platform has none.
    """
    try:
        if isinstance(endpoint, TcpEndpoint):
            return socket.create_connection((endpoint.host, endpoint.port), timeout=timeout)
        if isinstance(endpoint, UnixEndpoint):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            address: object = endpoint.path
        else:
            sock = new_vsock_socket()
            address = (endpoint.cid, endpoint.port)
        sock.settimeout(timeout)
        try:
            sock.connect(address)  # type: ignore[arg-type]
        except BaseException:
            sock.close()
            raise
        return sock
    except OSError as exc:
        raise HandoffError(f"cannot connect to {endpoint}: {exc.strerror or exc}") from exc
