"""Calling the service with its audit record held back, written without blocking the loop.

Where the service offers ``held_audit_writer()`` (the store's group-committing writer), the
server calls each operation through ``service.call_holding_audit``: the operation runs as
usual, but its audit record is handed back instead of written. This request then awaits the
writer, which commits the record together with those of other requests that queued
meanwhile, while the event loop goes on serving (on PostgreSQL, during the round trip). The
answer is sent only once the record is written, so an operation is never answered without
its audit record.

Holding costs a request a hand-off through the event loop (about 20 µs), which only pays when
other requests share the batch. :class:`RequestsInFlight` tells the server when that is
likely: a request that runs alone, as a client that sends one request at a time makes it,
writes its record in the call, as without a writer. (PostgreSQL's ``commit_siblings`` makes
the same bet for its commit delay.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool

from enclave_kms.model import Caller

__all__ = ["HeldAuditWriter", "RequestsInFlight", "call_holding_audit"]


class HeldAuditWriter(Protocol):
    """What ``service.held_audit_writer()`` returns (see ``enclave_kms._service_base``)."""

    async def write(self, audits: Any) -> list[bool]:
        """Write each held record; whether each was written (see ``HeldCall.settle``)."""

    async def aclose(self) -> None:
        """Finish the queued writes and close the writer's connection."""

    def counts(self) -> tuple[int, int]:
        """Batches written so far, and the records they carried."""


class RequestsInFlight:
    """Counts this worker's requests in flight, to tell whether one runs beside others."""

    __slots__ = ("_asked_this_turn", "_count", "_last_turn_busy")

    def __init__(self) -> None:
        self._count = 0
        self._asked_this_turn = 0
        self._last_turn_busy = False

    def enter(self) -> None:
        """A request has started."""
        self._count += 1

    def leave(self) -> None:
        """A request has been answered (or abandoned)."""
        self._count -= 1

    def side_by_side(self) -> bool:
        """Whether other requests run beside this one: now, in this turn of the loop, or the last.

        Requests that arrive together run one after another in one turn of the event loop,
        each to its end, so none sees another in flight: the turns tell. Under steady load
        every turn serves several, so every request is held; a client sending one request at
        a time gets turns of one, and no request is held. The first request of a burst runs
        alone; the rest share a batch.
        """
        self._asked_this_turn += 1
        if self._asked_this_turn == 1:
            # Runs at the start of the next turn, before the requests that arrive in it.
            asyncio.get_running_loop().call_soon(self._new_turn)
        return self._count > 1 or self._asked_this_turn > 1 or self._last_turn_busy

    def _new_turn(self) -> None:
        self._last_turn_busy = self._asked_this_turn > 1
        self._asked_this_turn = 0


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
