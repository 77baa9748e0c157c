"""Group commit of audit records for an asyncio server (the stores' ``audit_batcher()``).

A request hands :meth:`AuditBatcher.write` the record it must write before it answers, and
awaits the outcome. Meanwhile the event loop serves other requests, whose records queue up.
The batcher writes whatever has queued as one batch, then whatever queued while that one was
being written, and so on: with N requests in flight, one transaction (and, for a database
server, one round trip) serves all N. Each store says how a batch is written; every record
is committed before its request hears back, and a guarded record is written only if its keys
are unchanged, checked by the statement that writes it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from enclave_kms.audit import AuditRecord
from enclave_kms.store._interface import KeyRecord, StoreError

__all__ = [
    "AsyncAuditBatcher",
    "AuditBatcher",
    "AuditWrite",
    "InProcessAuditBatcher",
    "Outcome",
    "record_refused",
]

#: One audit write: the record, and the key records it is guarded by (possibly none).
AuditWrite = tuple[AuditRecord, Sequence[KeyRecord]]
#: Per record: whether it was written (False: a guard failed), or why it was refused.
Outcome = bool | StoreError


def record_refused(where: str, exc: Exception) -> StoreError:
    """The error for a record ``where`` could not take: a value the driver cannot send, or a
    bug. It names the exception's type, not its text, which could quote the record."""
    return StoreError(f"cannot write an audit record to {where}: {type(exc).__name__}")


class _Pending:
    __slots__ = ("future", "write")

    def __init__(self, write: AuditWrite, future: asyncio.Future[bool]) -> None:
        self.write = write
        self.future = future


class AuditBatcher:
    """Writes audit records for one event loop, batching whatever queued meanwhile.

    A subclass writes a batch: :class:`AsyncAuditBatcher` for a database server (awaited, so
    the loop serves requests meanwhile), :class:`InProcessAuditBatcher` for a store written in
    this process (run once the requests ready on the loop have queued their records).

    Args:
        where: the store as error messages name it (no password).
    """

    def __init__(self, *, where: str) -> None:
        self._where = where
        self._queue: list[_Pending] = []
        self._scheduled = False
        self._batches = 0
        self._records = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._where})"

    async def write(self, writes: Sequence[AuditWrite]) -> list[bool]:
        """Write each ``(record, guards)``; return, per record, whether it was written.

        A guarded record is written only if every key in its guards still has the state,
        current version and policy given (in the same statement); ``False`` means it was not.

        Raises:
            StoreError: the store refused a record or could not be reached (the caller must
                fail its operation: its record may not have been written).
        """
        if not writes:
            return []
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in writes]
        self._queue += [_Pending(w, f) for w, f in zip(writes, futures, strict=True)]
        if not self._scheduled:
            self._scheduled = True
            self._schedule(loop)
        if len(futures) == 1:  # the server's case: no gather needed
            return [await futures[0]]
        return list(await asyncio.gather(*futures))

    async def aclose(self) -> None:
        """Finish the queued writes (then a subclass releases its connection)."""

    def counts(self) -> tuple[int, int]:
        """Batches finished so far, and the records they carried (written, refused or failed).

        Their ratio is the mean batch size: how many requests each commit served.
        """
        return self._batches, self._records

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        """Arrange for the queue to be written (once; ``_scheduled`` is set)."""
        raise NotImplementedError

    def _store_error(self, exc: Exception) -> StoreError:
        """The error a request is failed with when its batch raised ``exc``."""
        return exc if isinstance(exc, StoreError) else record_refused(self._where, exc)

    def _finished(self, batch: Sequence[_Pending]) -> None:
        self._batches += 1
        self._records += len(batch)

    def _take(self) -> list[_Pending]:
        batch, self._queue = self._queue, []
        return batch

    def _settle(self, batch: Sequence[_Pending], outcomes: Sequence[Outcome]) -> None:
        self._finished(batch)
        for pending, outcome in zip(batch, outcomes, strict=True):
            if pending.future.done():  # the waiting request was cancelled
                continue
            if isinstance(outcome, StoreError):
                pending.future.set_exception(outcome)
            else:
                pending.future.set_result(outcome)

    def _fail(self, batch: Sequence[_Pending], error: StoreError) -> None:
        self._finished(batch)
        for pending in batch:
            if not pending.future.done():
                pending.future.set_exception(error)


class AsyncAuditBatcher(AuditBatcher):
    """Group commit for a database server: each batch is awaited, one at a time.

    Whatever queues while one batch is in flight goes in the next.
    """

    def __init__(self, *, where: str) -> None:
        super().__init__(where=where)
        self._flusher: asyncio.Task[None] | None = None

    async def aclose(self) -> None:
        """Finish the queued writes (then a subclass releases its connection)."""
        if self._flusher is not None:
            await self._flusher

    async def _write_batch(self, writes: list[AuditWrite]) -> list[Outcome]:
        """Write a batch; one outcome per record. Raising fails every record of the batch."""
        raise NotImplementedError

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        self._flusher = loop.create_task(self._flush())

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch = self._take()
                try:
                    outcomes = await self._write_batch([p.write for p in batch])
                except Exception as exc:  # whatever it is, no request may be left waiting
                    self._fail(batch, self._store_error(exc))
                except BaseException:  # cancelled (the event loop is closing)
                    self._fail(batch, StoreError(f"audit writer for {self._where} stopped"))
                    raise
                else:
                    self._settle(batch, outcomes)
        finally:
            self._scheduled = False


class InProcessAuditBatcher(AuditBatcher):
    """Group commit for a store written in this process, where a write has no wait to overlap.

    The batch is written by a callback queued behind the requests already ready to run on
    the loop, so it holds the records they queue in the same turn of the loop. Writing takes
    the loop's thread, as a single write would. While another process holds the store's
    writer lock, the loop does not wait for it: the batch goes back to the queue, the loop
    serves the requests at hand, and the batch (grown by theirs) is tried again next turn.
    Only after :data:`MAX_DEFER_SECONDS` of that does the write wait for the lock.
    """

    #: How long a batch may be put off while the writer lock is busy, before the write waits.
    MAX_DEFER_SECONDS = 0.002

    def __init__(self, *, where: str, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(where=where)
        self._clock = clock
        self._deferred_since: float | None = None

    async def aclose(self) -> None:
        """Write what is queued now (nothing is left once the loop has run the callback)."""
        if self._queue:
            self._flush_now(wait=True)  # nothing runs after this: wait for the lock

    def _write_batch_now(self, writes: list[AuditWrite], *, wait: bool) -> list[Outcome] | None:
        """Write a batch; one outcome per record. Raising fails every record of the batch.

        Without ``wait``, return None (having written nothing) if the store is busy.
        """
        raise NotImplementedError

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.call_soon(self._flush_now)

    def _flush_now(self, *, wait: bool = False) -> None:
        self._scheduled = False
        batch = self._take()
        if not batch:
            return
        since = self._deferred_since
        wait = wait or (since is not None and self._clock() - since >= self.MAX_DEFER_SECONDS)
        try:
            outcomes = self._write_batch_now([p.write for p in batch], wait=wait)
        except Exception as exc:  # whatever it is, no request may be left waiting
            self._deferred_since = None
            self._fail(batch, self._store_error(exc))
            return
        if outcomes is None:  # busy: keep the batch first in line, try again next turn
            if since is None:
                self._deferred_since = self._clock()
            self._queue[:0] = batch
            self._scheduled = True
            self._schedule(asyncio.get_running_loop())
            return
        self._deferred_since = None
        self._settle(batch, outcomes)
