"""The FastAPI app: AWS KMS JSON 1.1 on ``POST /``, plus ``/healthz`` and ``/metrics``.

One request goes through these steps, in this order, and any failure is answered once, here,
as ``{"__type", "message"}`` with the error class's HTTP status (architecture rule 5):

1. read the body, refusing more than ``max_body_bytes`` without buffering past the limit;
2. verify the SigV4 signature (:mod:`._sigv4`) — nothing is parsed before the caller is known;
3. resolve ``X-Amz-Target: TrentService.<Operation>`` against the core's registry;
4. decode the JSON into the operation's request dataclass (:mod:`._wire`);
5. call ``service.<method>(caller, request)`` on the event loop (a call is short: see
   ``service_in_threadpool`` in the settings for the worker-thread alternative);
6. encode the response, leaving absent fields out.

Anything that is not a :class:`~enclave_kms.errors.KmsError` becomes ``KMSInternalException``
(500) with a generic message; the server log gets the exception type and traceback, not its
message, which could carry request data.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import Route

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
from enclave_kms.server._metrics import CONTENT_TYPE_LATEST, ServerMetrics
from enclave_kms.server._sigv4 import SigV4Verifier, UnsafeAcceptAnySigV4Verifier
from enclave_kms.server._wire import decode_request, encode_error, encode_response
from enclave_kms.server._wire import kms_service_model as _kms_model
from enclave_kms.server.settings import ServerSettings

__all__ = ["create_app"]

_LOG = logging.getLogger("enclave_kms.server")
_CONTENT_TYPE = "application/x-amz-json-1.1"
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


async def _read_body(request: Request, limit: int, timeout: float) -> bytes:
    declared = request.headers.get("content-length")
    too_large = RequestEntityTooLargeException(f"Request body exceeds the limit of {limit} bytes.")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    try:
        # The body arrives before any authentication: a client that announces more than it
        # sends must not hold the connection (and its buffer) indefinitely.
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:  # chunked or lying Content-Length: stop at the limit
                    raise too_large
    except TimeoutError:
        raise RequestTimeoutException(
            f"The request body did not arrive within {timeout:g} seconds."
        ) from None
    return bytes(body)


def _frames(exc: BaseException) -> str:
    """File, line and function of each frame: no source text, no exception message."""
    return "\n".join(
        f"  {f.filename}:{f.lineno} in {f.name}" for f in traceback.extract_tb(exc.__traceback__)
    )


def _error_response(exc: KmsError, request_id: str) -> Response:
    return Response(
        encode_error(exc.aws_type, exc.message),
        status_code=exc.http_status,
        media_type=_CONTENT_TYPE,
        headers={"x-amzn-RequestId": request_id},
    )


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
    counter = [0]

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if insecure:
            _LOG.warning(_INSECURE_WARNING)
        yield
        if on_shutdown is not None:
            on_shutdown()

    app = FastAPI(
        title="enclave-kms",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.service = service

    async def kms(request: Request) -> Response:
        started = time.perf_counter()
        request_id = str(uuid.uuid4())
        operation: str | None = None
        try:
            if insecure:
                counter[0] += 1
                if counter[0] % warn_every == 0:
                    _LOG.warning(_INSECURE_WARNING)
            body = await _read_body(request, limit, settings.body_read_timeout_seconds)
            scope = request.scope
            who = verifier.verify(
                method=request.method,
                scheme=scope.get("scheme", "http"),
                path=(scope.get("raw_path") or scope["path"].encode()).decode("latin-1"),
                query=scope.get("query_string", b"").decode("latin-1"),
                headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
                body=body,
            )
            operation, req_type, method = dispatch.resolve(request.headers.get("x-amz-target"))
            kms_request = decode_request(operation, body, req_type)
            caller = Caller(who.principal_arn, who.account_id, who.access_key_id)
            if threadpool:
                result = await run_in_threadpool(method, caller, kms_request)
            else:
                result = method(caller, kms_request)
            response = Response(
                encode_response(result),
                media_type=_CONTENT_TYPE,
                headers={"x-amzn-RequestId": request_id},
            )
            outcome = "ok"
        except KmsError as exc:
            response = _error_response(exc, request_id)
            outcome = exc.aws_type
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
            response = _error_response(internal, request_id)
            outcome = internal.aws_type
        metrics.observe(operation, outcome, time.perf_counter() - started)
        return response

    # A plain Starlette route: the handler needs the raw request only, and FastAPI's
    # dependency and validation machinery would cost more per request than SigV4 does.
    app.router.routes.insert(0, Route("/", kms, methods=["POST"]))

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return app
