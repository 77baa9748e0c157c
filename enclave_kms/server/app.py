"""The FastAPI app: AWS KMS JSON 1.1 on ``POST /``, plus ``/healthz`` and ``/metrics``.

One request goes through these steps, in this order, and any failure is answered once, here,
as ``{"__type", "message"}`` with the error class's HTTP status (architecture rule 5):

1. read the body, refusing more than ``max_body_bytes`` without buffering past the limit;
2. verify the SigV4 signature (:mod:`._sigv4`) — nothing is parsed before the caller is known;
3. resolve ``X-Amz-Target: TrentService.<Operation>`` against the core's registry;
4. decode the JSON into the operation's request dataclass (:mod:`._wire`);
5. call ``service.<method>(caller, request)`` on the event loop (a call is short: see
   ``service_in_threadpool`` in the settings for the worker-thread alternative). Where the
   service offers a ``held_audit_writer`` (both built-in stores), the call's audit record is
   held back and written by that writer, with those of the other requests in flight, while
   the event loop serves more; the answer waits for it (:mod:`._held_audit`). A request
   that runs alone writes its record in the call;
6. encode the response, leaving absent fields out.

Anything that is not a :class:`~enclave_kms.errors.KmsError` becomes ``KMSInternalException``
(500) with a generic message; the server log gets the exception type and traceback, not its
message, which could carry request data.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import time
import traceback
import types
import typing
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from enclave_kms.errors import (
    KmsError,
    KMSInternalException,
    RequestEntityTooLargeException,
    RequestTimeoutException,
    UnknownOperationException,
    UnsupportedOperationException,
)
from enclave_kms.model import OPERATIONS, Caller
from enclave_kms.server._credentials import CredentialSet, load_credentials_file
from enclave_kms.server._held_audit import HeldAuditWriter, RequestsInFlight, call_holding_audit
from enclave_kms.server._metrics import CONTENT_TYPE_LATEST, ServerMetrics
from enclave_kms.server._sigv4 import (
    SigV4Verifier,
    UnsafeAcceptAnySigV4Verifier,
    header_map,
)
from enclave_kms.server._wire import decode_request, encode_error, encode_response
from enclave_kms.server._wire import kms_service_model as _kms_model
from enclave_kms.server.settings import ServerSettings

__all__ = ["create_app"]

_LOG = logging.getLogger("enclave_kms.server")
_CONTENT_TYPE = "application/x-amz-json-1.1"
_CONTENT_TYPE_HEADER = (b"content-type", _CONTENT_TYPE.encode("latin-1"))
_Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]
_TARGET_PREFIX = "TrentService."
_INSECURE_WARNING = (
    "UNSAFE: --insecure-accept-any-credentials is on: request signatures are NOT checked and "
    "every caller is the account root. Use this only for throwaway test runs."
)


class _Dispatch:
    """Operation name → (request type, bound service method), built once per app."""

    def __init__(self, service: object, operations: Mapping[str, tuple[type, type, str]]) -> None:
        self.table: dict[str, tuple[type, Callable[[Caller, Any], Any]]] = {}
        for name, (req_type, _resp_type, method) in operations.items():
            bound = getattr(service, method, None)
            if callable(bound):
                self.table[name] = (req_type, bound)
        self._modelled = frozenset(_kms_model().operation_names)

    def resolve(self, target: str | None) -> tuple[str, type, Callable[[Caller, Any], Any]]:
        if not target or not target.startswith(_TARGET_PREFIX):
            raise UnknownOperationException("The X-Amz-Target header does not name an operation.")
        name = target[len(_TARGET_PREFIX) :]
        entry = self.table.get(name)
        if entry is not None:
            return name, entry[0], entry[1]
        if name in self._modelled:
            # A real KMS operation this service does not implement: say so with a modelled
            # error that SDKs know, rather than pretend the operation does not exist.
            raise UnsupportedOperationException(f"{name} is not supported by this service.")
        raise UnknownOperationException(f"Unknown operation {name[:64]!r}.")


class _Resumed:
    """Await the rest of a coroutine that :func:`_step` started and that had to suspend.

    This is what ``await`` (``yield from``) would have done from the start: every value the
    coroutine yields goes up to the task, every value or exception the task sends comes back
    down, so cancellation (the body-read timeout) reaches the suspended ``receive()``.
    """

    __slots__ = ("_coro", "_first")

    def __init__(self, coro: Coroutine[Any, Any, Message], first: object) -> None:
        self._coro = coro
        self._first = first

    def __await__(self) -> Generator[Any, Any, Message]:
        coro, pending = self._coro, self._first
        while True:
            try:
                sent = yield pending
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # handed to the coroutine, as await does
                try:
                    pending = coro.throw(exc)
                except StopIteration as done:
                    return typing.cast(Message, done.value)
            else:
                try:
                    pending = coro.send(sent)
                except StopIteration as done:
                    return typing.cast(Message, done.value)


def _source_ip(scope: Scope) -> str | None:
    """``aws:SourceIp``: the TCP peer, or the client a trusted proxy relayed for.

    uvicorn rewrites ``client`` from ``X-Forwarded-For`` only when the peer is one of the
    configured ``trusted_proxies``. Anything that is not an IP address (a test client's
    placeholder name) is no address at all.
    """
    client = scope.get("client")
    if not client:
        return None
    try:
        return str(ipaddress.ip_address(client[0]))
    except ValueError:
        return None


def _step(receive: Receive) -> tuple[Message | None, Awaitable[Message]]:
    """Run ``receive()`` up to its first suspension: (message, _) if it finished without one.

    ASGI servers hand the handler a request whose small body has usually arrived with the
    headers (uvicorn parses both from the same read), so ``receive()`` returns without waiting;
    only when it must wait is a timer worth arming (``asyncio.timeout`` costs more per request
    than the rest of the body read).
    """
    pending = receive()
    if not isinstance(pending, types.CoroutineType):  # another awaitable: await it normally
        return None, pending
    try:
        first = pending.send(None)
    except StopIteration as done:
        return typing.cast(Message, done.value), pending
    return None, _Resumed(pending, first)


async def _read_body(receive: Receive, declared: str | None, limit: int, timeout: float) -> bytes:
    too_large = RequestEntityTooLargeException(f"Request body exceeds the limit of {limit} bytes.")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    first, rest = _step(receive)
    if first is not None and first["type"] == "http.request" and not first.get("more_body"):
        body: bytes = first.get("body", b"")
        if len(body) > limit:
            raise too_large
        return body  # the common case: the whole body was already there, no timer needed
    buffer = bytearray()
    try:
        # The body arrives before any authentication: a client that announces more than it
        # sends must not hold the connection (and its buffer) indefinitely.
        async with asyncio.timeout(timeout):
            message = first if first is not None else await rest
            while True:
                if message["type"] == "http.disconnect":
                    raise ClientDisconnect()  # as Request.stream() did
                if message["type"] == "http.request":
                    buffer += message.get("body", b"")
                    if len(buffer) > limit:  # chunked or lying Content-Length: stop at the limit
                        raise too_large
                    if not message.get("more_body"):
                        return bytes(buffer)
                message = await receive()
    except TimeoutError:
        raise RequestTimeoutException(
            f"The request body did not arrive within {timeout:g} seconds."
        ) from None


def _frames(exc: BaseException) -> str:
    """File, line and function of each frame: no source text, no exception message."""
    return "\n".join(
        f"  {f.filename}:{f.lineno} in {f.name}" for f in traceback.extract_tb(exc.__traceback__)
    )


def _first(headers: Mapping[str, list[str]], name: str) -> str | None:
    values = headers.get(name)
    return values[0] if values else None


def _request_id() -> str:
    """A random (version 4) UUID in its usual text form, as AWS's request ids are.

    Formatted by hand from 16 random bytes: ``str(uuid.uuid4())`` costs several times more.
    """
    h = os.urandom(16).hex()
    # Version nibble 4; variant bits 10xx (RFC 9562 §5.4), as uuid.uuid4() sets them.
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


async def _send(send: Send, status: int, body: bytes, request_id: str) -> None:
    """The response as starlette's ``Response`` would send it, without building one."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"x-amzn-requestid", request_id.encode("latin-1")),
                (b"content-length", str(len(body)).encode("latin-1")),
                _CONTENT_TYPE_HEADER,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _Endpoint:
    """An ASGI callable: Starlette's ``Route`` wraps plain functions in ``Request`` handling."""

    __slots__ = ("_handler",)

    def __init__(self, handler: _Asgi) -> None:
        self._handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._handler(scope, receive, send)


class _KmsApp(FastAPI):
    """FastAPI, with ``POST /`` handed to the KMS handler before FastAPI's middleware stack.

    Every KMS call is ``POST /``. FastAPI's stack (error, telemetry, body-limit and exception
    middleware, then the router) costs more per request than SigV4 verification, and the KMS
    handler answers its own errors. Everything else, including ``POST /`` under a root path,
    goes through FastAPI, where the same handler is routed too. Once any middleware is added
    to the app (``add_middleware``), every request goes through FastAPI, so that middleware
    sees KMS calls as well.
    """

    kms_endpoint: _Asgi | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self.kms_endpoint
        if (
            endpoint is not None
            and not self.user_middleware
            and scope["type"] == "http"
            and scope["path"] == "/"
            and scope["method"] == "POST"
            and not scope.get("root_path")
        ):
            await endpoint(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def create_app(
    service: object,
    settings: ServerSettings,
    *,
    credentials: CredentialSet | None = None,
    clock: Callable[[], datetime] | None = None,
    operations: Mapping[str, tuple[type, type, str]] = OPERATIONS,
    on_shutdown: Callable[[], None] | None = None,
) -> FastAPI:
    """Build the HTTP app over a KMS service.

    Args:
        service: the core service: one method per operation in ``operations``.
        settings: the server settings (body limit, region, unsafe mode).
        credentials: the accepted access keys; read from the settings' credentials file when
            ``None`` (ignored in the unsafe accept-any mode).
        clock: the SigV4 clock (aware UTC ``datetime``); the system clock by default.
        operations: the registry to dispatch on (the core's ``OPERATIONS`` by default).
        on_shutdown: called when the app shuts down (for example to close the store).

    Raises:
        ValidationException: the credentials file is missing or malformed.
    """
    if settings.insecure_accept_any_credentials:
        verifier: SigV4Verifier = UnsafeAcceptAnySigV4Verifier(
            region=settings.region, account_id=settings.account_id, clock=clock
        )
    else:
        if credentials is None:
            credentials = load_credentials_file(
                settings.resolved_credentials_file, account_id=settings.account_id
            )
        verifier = SigV4Verifier(credentials, region=settings.region, clock=clock)
    dispatch = _Dispatch(service, operations)
    metrics = ServerMetrics([*dispatch.table, "unknown"])
    limit = settings.max_body_bytes
    insecure = settings.insecure_accept_any_credentials
    warn_every = settings.insecure_warning_interval
    threadpool = settings.service_in_threadpool
    held_audit = getattr(service, "held_audit_writer", None)
    audit_writer: HeldAuditWriter | None = held_audit() if callable(held_audit) else None
    if audit_writer is not None:
        metrics.watch_audit_batches(audit_writer.counts)
    body_timeout = settings.body_read_timeout_seconds
    counter = [0]

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if insecure:
            _LOG.warning(_INSECURE_WARNING)
        yield
        if audit_writer is not None:
            await audit_writer.aclose()
        if on_shutdown is not None:
            on_shutdown()

    app = _KmsApp(
        title="enclave-kms",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.service = service

    in_flight = RequestsInFlight()

    async def kms(scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request_id = _request_id()
        operation: str | None = None
        in_flight.enter()
        try:
            if insecure:
                counter[0] += 1
                if counter[0] % warn_every == 0:
                    _LOG.warning(_INSECURE_WARNING)
            # Every header decoded and indexed once; SigV4 and dispatch read from this map.
            headers = header_map(
                (k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]
            )
            body = await _read_body(receive, _first(headers, "content-length"), limit, body_timeout)
            who = verifier.verify_indexed(
                method=scope["method"],
                scheme=scope.get("scheme", "http"),
                path=(scope.get("raw_path") or scope["path"].encode()).decode("latin-1"),
                query=scope.get("query_string", b"").decode("latin-1"),
                headers=headers,
                body=body,
            )
            operation, req_type, method = dispatch.resolve(_first(headers, "x-amz-target"))
            kms_request = decode_request(operation, body, req_type)
            caller = Caller(
                who.principal_arn,
                who.account_id,
                who.access_key_id,
                _source_ip(scope),
                # "https" when this server terminates TLS, or when a trusted proxy that did
                # says so in X-Forwarded-Proto (uvicorn rewrites the scheme only for those).
                secure_transport=scope.get("scheme") == "https",
            )
            if audit_writer is not None and in_flight.side_by_side():
                result = await call_holding_audit(
                    service, audit_writer, method, caller, kms_request, threadpool=threadpool
                )
            elif threadpool:
                result = await run_in_threadpool(method, caller, kms_request)
            else:
                result = method(caller, kms_request)
            status, payload, outcome = 200, encode_response(result), "ok"
        except KmsError as exc:
            status, payload, outcome = (
                exc.http_status,
                encode_error(exc.aws_type, exc.message),
                exc.aws_type,
            )
        except Exception as exc:
            # Type and frames only: the message of a foreign exception may quote request data.
            _LOG.error(
                "internal error in %s (request %s): %s\n%s",
                operation or "request",
                request_id,
                type(exc).__name__,
                _frames(exc),
            )
            internal = KMSInternalException("An internal error occurred. Try again later.")
            status, payload = (
                internal.http_status,
                encode_error(internal.aws_type, internal.message),
            )
            outcome = internal.aws_type
        finally:
            in_flight.leave()
        metrics.observe(operation, outcome, time.perf_counter() - started)
        await _send(send, status, payload, request_id)

    # A raw ASGI endpoint (Starlette calls a non-function endpoint as an ASGI app): the handler
    # needs the scope only, and Starlette's Request/Response wrapping and FastAPI's dependency
    # and validation machinery would cost more per request than SigV4 does. The route serves
    # what _KmsApp's shortcut does not take (a root path); the shortcut serves the rest.
    app.router.routes.insert(0, Route("/", _Endpoint(kms), methods=["POST"]))
    app.kms_endpoint = kms

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return app
