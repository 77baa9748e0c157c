"""Calling the service with its audit record held back, written without blocking the loop.

Where the service offers ``held_audit_writer()`` (the store's group-committing writer), the
server calls each operation through ``service.call_holding_audit``: the operation runs as
usual, but its audit record is handed back instead of written. This request then awaits the
writer, which commits the record together with those of other requests that queued
meanwhile, while the event loop goes on serving (on PostgreSQL, during the round trip). The
answer is sent only once the record is written, so an operation is never answered without
its audit record.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool

from enclave_kms.model import Caller

__all__ = ["HeldAuditWriter", "call_holding_audit"]


class HeldAuditWriter(Protocol):
    """What ``service.held_audit_writer()`` returns (see ``enclave_kms._service_base``)."""

    async def write(self, audits: Any) -> list[bool]:
        """Write each held record; whether each was written (see ``HeldCall.settle``)."""

    async def aclose(self) -> None:
        """Finish the queued writes and close the writer's connection."""


async def call_holding_audit(
    service: Any,
    writer: HeldAuditWriter,
    method: Callable[[Caller, Any], Any],
    caller: Caller,
    request: Any,
    *,
    threadpool: bool,
) -> Any:
    """``method(caller, request)``, answered only once its audit record is written.

    If the operation was decided on a cached key that has changed since, its record is not
    written and ``settle`` runs the operation again on the stored key (that record is then
    always written). A write that fails raises, so the request fails: its record may be
    missing.

    Raises:
        KmsError: the operation's own error, once its record is written.
        StoreError: the record could not be written.
    """
    hold = service.call_holding_audit
    if threadpool:
        call = await run_in_threadpool(hold, method, caller, request)
    else:
        call = hold(method, caller, request)
    while (again := call.settle(await writer.write(call.audits))) is not None:
        call = again
    return call.result()
