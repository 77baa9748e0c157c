"""Credentials hand-off: the parent passes temporary AWS credentials into the enclave.

The enclave cannot reach IMDS, so, as kmstool-instance does, the parent reads credentials from
its default provider chain and sends them over vsock. The wire format is kmstool's: JSON objects
each terminated by a 0 byte::

    parent -> enclave  {"Operation":"SetClient","AwsAccessKeyId":"ASIA...",
                        "AwsSecretAccessKey":"...","AwsSessionToken":"...","AwsRegion":"eu-west-1"}\\0
    enclave -> parent  {"Status":"Ok"}\\0   or   {"Status":"Error","Message":"..."}\\0

Parent side::

    send_credentials("vsock:16:9000", Credentials.from_boto3())

Enclave side::

    creds = receive_credentials("vsock:any:9000")   # blocks until one valid SetClient

Security notes:

* Only the parent (and other enclaves on the host, if any) can reach an enclave's vsock port,
  but vsock is not authenticated: treat what arrives as the parent's claim. Use temporary
  credentials scoped to what the enclave needs (KMS with Recipient conditions).
* Secrets never appear in logs, error messages or reprs. They are Python ``str`` objects
  (botocore needs ``str``), which are immutable: Python cannot guarantee they are erased from
  memory, and this module does not pretend to.
* Reads are bounded (64 KiB per message by default) and time out.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from . import _handoff_wire as wire
from . import _sockets
from .endpoints import Endpoint, parse_endpoint
from .errors import HandoffError

__all__ = [
    "Credentials",
    "CredentialsReceiver",
    "HandoffReply",
    "receive_credentials",
    "send_credentials",
]

_log = logging.getLogger("enclave_kms.proxy.handoff")
_HIDDEN = "<hidden>"


def _mask(access_key_id: str) -> str:
    # The key id is not secret (it appears in CloudTrail), but logs need no more than this.
    return f"{access_key_id[:4]}...{access_key_id[-4:]}"


@dataclass(frozen=True, repr=False)
class Credentials:
    """Temporary AWS credentials. The repr shows neither the secret key nor the token."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None
    region: str | None = None

    def __repr__(self) -> str:
        token = None if self.session_token is None else _HIDDEN
        return (
            f"Credentials(access_key_id={_mask(self.access_key_id)!r}, "
            f"secret_access_key={_HIDDEN!r}, session_token={token!r}, region={self.region!r})"
        )

    @classmethod
    def from_boto3(cls, *, region: str | None = None, profile: str | None = None) -> Credentials:
        """Read credentials from boto3's default provider chain (env, files, IMDS, ...).

        Raises:
            HandoffError: boto3 is missing, or the chain yields no credentials.
        """
        try:
            # Imported here: only the parent side needs boto3, never the enclave.
            import boto3
            import botocore.exceptions
        except ImportError as exc:
            raise HandoffError("boto3 is not installed; pass credentials explicitly") from exc
        try:
            session = boto3.Session(profile_name=profile, region_name=region)
            found = session.get_credentials()
            frozen = None if found is None else found.get_frozen_credentials()
        # botocore raises ValueError for some malformed settings (e.g. a container URI).
        except (botocore.exceptions.BotoCoreError, ValueError) as exc:
            raise HandoffError(f"cannot read AWS credentials: {type(exc).__name__}") from exc
        if frozen is None or not frozen.access_key or not frozen.secret_key:
            raise HandoffError(
                "no AWS credentials in the default provider chain (environment, config "
                "files, instance metadata)"
            )
        return cls(frozen.access_key, frozen.secret_key, frozen.token, session.region_name)

    def environment(self) -> dict[str, str]:
        """The ``AWS_*`` environment variables for these credentials (contains secrets)."""
        env = {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
        }
        if self.session_token is not None:
            env["AWS_SESSION_TOKEN"] = self.session_token
        if self.region is not None:
            env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = self.region
        return env

    def _message(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            "Operation": "SetClient",
            "AwsAccessKeyId": self.access_key_id,
            "AwsSecretAccessKey": self.secret_access_key,
        }
        if self.session_token is not None:
            message["AwsSessionToken"] = self.session_token
        if self.region is not None:
            message["AwsRegion"] = self.region
        return message


@dataclass(frozen=True)
class HandoffReply:
    """The enclave's answer to a successful SetClient."""

    status: Literal["Ok"]
    message: str | None = None


def _as_endpoint(endpoint: Endpoint | str) -> Endpoint:
    return parse_endpoint(endpoint) if isinstance(endpoint, str) else endpoint


def send_credentials(
    endpoint: Endpoint | str,
    credentials: Credentials,
    *,
    timeout: float = 10.0,
    max_message_size: int = wire.DEFAULT_MAX_MESSAGE,
) -> HandoffReply:
    """Parent side: send one SetClient and wait for the enclave's reply.

    Args:
        endpoint: where the enclave listens, e.g. ``vsock:16:9000`` (or tcp:/unix: in tests).
        credentials: what to send; see :meth:`Credentials.from_boto3`.
        timeout: seconds for connecting and for each send/receive.
        max_message_size: bound on the reply size.

    Returns:
        The ``Ok`` reply.

    Raises:
        HandoffError: connection failure, an ``Error`` reply (its message included), or a
            malformed reply.
        EndpointError: ``endpoint`` is a malformed string.
    """
    target = _as_endpoint(endpoint)
    with wire.connect_blocking(target, timeout) as sock:
        try:
            sock.sendall(wire.encode(credentials._message()))
        except OSError as exc:
            raise HandoffError(f"send to {target} failed: {exc.strerror or exc}") from exc
        reply = wire.MessageReader(sock, max_message_size).read()
    if reply is None:
        raise HandoffError(f"{target} closed the connection without a reply")
    status, message = reply.get("Status"), reply.get("Message")
    if message is not None and not isinstance(message, str):
        raise HandoffError("malformed reply: Message is not a string")
    if status == "Error":
        raise HandoffError(f"the enclave refused the credentials: {message or 'no message'}")
    if status != "Ok":
        raise HandoffError("malformed reply: Status is neither Ok nor Error")
    _log.info("credentials sent to=%s access_key_id=%s", target, _mask(credentials.access_key_id))
    return HandoffReply("Ok", message)


class CredentialsReceiver:
    """Enclave side: listen for a SetClient and return the credentials it carries.

    Use it as a context manager; :meth:`receive` may be called repeatedly (for example to
    accept refreshed credentials before the previous ones expire).

    Args:
        listen: where to listen, e.g. ``vsock:any:9000`` (or tcp:/unix: in tests).
        timeout: seconds to wait for a connection in :meth:`receive` (``None``: forever).
        io_timeout: seconds for each read/write on an accepted connection.
        max_message_size: bound on each request.

    Raises:
        ProxyConfigError: the listener cannot be bound.
    """

    def __init__(
        self,
        listen: Endpoint | str,
        *,
        timeout: float | None = None,
        io_timeout: float = 10.0,
        max_message_size: int = wire.DEFAULT_MAX_MESSAGE,
    ) -> None:
        self.endpoint = _as_endpoint(listen)
        self._timeout = timeout
        self._io_timeout = io_timeout
        self._limit = max_message_size
        self._sock = _sockets.listen_socket(self.endpoint, backlog=8)
        self._sock.setblocking(True)

    @property
    def address(self) -> object:
        """The bound address (resolves port 0)."""
        return self._sock.getsockname()

    def receive(self) -> Credentials:
        """Accept one connection, read its SetClient, reply, and return the credentials.

        Raises:
            HandoffError: no connection within ``timeout``, or the message was malformed
                (the sender gets ``{"Status":"Error"}`` with the reason first).
        """
        self._sock.settimeout(self._timeout)
        try:
            conn, _ = self._sock.accept()
        except TimeoutError as exc:
            raise HandoffError("no credentials received before the timeout") from exc
        with conn:
            conn.settimeout(self._io_timeout)
            try:
                message = wire.MessageReader(conn, self._limit).read()
                if message is None:
                    raise HandoffError("the sender closed the connection without a message")
                fields = wire.validate_set_client(message)
            except HandoffError as exc:
                _reply(conn, {"Status": "Error", "Message": str(exc)})
                _discard_rest(conn)
                _log.warning("credentials rejected: %s", exc)
                raise
            _reply(conn, {"Status": "Ok"})
        credentials = Credentials(
            access_key_id=fields["AwsAccessKeyId"] or "",
            secret_access_key=fields["AwsSecretAccessKey"] or "",
            session_token=fields["AwsSessionToken"],
            region=fields["AwsRegion"],
        )
        _log.info(
            "credentials received access_key_id=%s region=%s",
            _mask(credentials.access_key_id), credentials.region,
        )  # fmt: skip
        return credentials

    def close(self) -> None:
        """Stop listening (and remove a unix socket file)."""
        self._sock.close()
        _sockets.remove_unix_socket(self.endpoint)

    def __enter__(self) -> CredentialsReceiver:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _reply(conn: socket.socket, message: dict[str, Any]) -> None:
    try:
        conn.sendall(wire.encode(message))
    except OSError as exc:  # the sender went away; nothing else to tell it
        _log.debug("could not send the hand-off reply: %s", exc)


def _discard_rest(conn: socket.socket, limit: int = 1 << 20) -> None:
    # Closing with unread input makes the kernel send RST, and the sender would lose the error
    # reply. Half-close, then read (bounded, within the io timeout) until the sender is done.
    try:
        conn.shutdown(socket.SHUT_WR)
        while limit > 0 and (chunk := conn.recv(65536)):
            limit -= len(chunk)
    except OSError:
        pass


def receive_credentials(listen: Endpoint | str, *, timeout: float | None = None) -> Credentials:
    """Listen on ``listen`` until one valid SetClient arrives; return its credentials.

    Raises:
        HandoffError: timed out, or the first message was malformed.
        ProxyConfigError: the listener cannot be bound.
    """
    with CredentialsReceiver(listen, timeout=timeout) as receiver:
        return receiver.receive()
