"""Calling the service as the HTTP server does: audit held back, written, then answered.

:class:`HeldAuditCalls` wraps a service: each operation runs through
``call_holding_audit``, its held records are written by a writer (the store's own
group-committing batcher), and only then is the response returned or the error raised,
looping through ``settle`` as the server does.
"""

from __future__ import annotations

import asyncio
from typing import Any

from enclave_kms.model import OPERATIONS

_OPERATION_METHODS = frozenset(method for _, _, method in OPERATIONS.values())


class HeldAuditCalls:
    """``service`` with every operation called holding its audit record back."""

    def __init__(self, service: Any, writer: Any) -> None:
        self._service = service
        self._writer = writer
        self._runner = asyncio.Runner()
        self.held: list[Any] = []  # every record the service held back, in order
        self.unwritten = 0  # guarded records the writer refused (a key had changed)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._service, name)
        if name not in _OPERATION_METHODS:
            return attr

        def call(caller: Any, request: Any) -> Any:
            held = self._service.call_holding_audit(attr, caller, request)
            while True:
                self.held += held.audits
                written = self._runner.run(self._writer.write(held.audits))
                self.unwritten += written.count(False)
                again = held.settle(written)
                if again is None:
                    return held.result()
                held = again

        return call

    def close(self) -> None:
        self._runner.run(self._writer.aclose())
        self._runner.close()
        self._service.close()
