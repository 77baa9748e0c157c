"""Prometheus metrics for the server, in a registry owned by one app.

A per-app ``CollectorRegistry`` (not prometheus-client's global one) lets several apps live in one
process — tests, benchmarks — without "Duplicated timeseries" errors. Label values are bounded:
the operation is a known KMS operation name or ``unknown``, the outcome is ``ok`` or an AWS error
name from :mod:`enclave_kms.errors`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from enclave_kms import errors

__all__ = ["CONTENT_TYPE_LATEST", "ServerMetrics"]

_KNOWN_ERRORS = frozenset(
    cls.aws_type
    for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, errors.KmsError)
)
# Latency buckets for an in-process KMS: most answers take well under 10 ms.
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ServerMetrics:
    """Request counts and latency per operation and outcome.

    Args:
        operations: the operation names that may appear as label values.
    """

    def __init__(self, operations: Collection[str]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._operations = frozenset(operations)
        self._requests = Counter(
            "enclave_kms_requests",
            "KMS API requests by operation and outcome (ok or the AWS error name).",
            ("operation", "outcome"),
            registry=self.registry,
        )
        self._latency = Histogram(
            "enclave_kms_request_duration_seconds",
            "Time from the request's arrival to its answer, by operation and outcome.",
            ("operation", "outcome"),
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self._children: dict[tuple[str, str], tuple[Counter, Histogram]] = {}

    def observe(self, operation: str | None, outcome: str, seconds: float) -> None:
        """Count one request and record its latency."""
        op = operation if operation in self._operations else "unknown"
        out = outcome if outcome == "ok" or outcome in _KNOWN_ERRORS else "other"
        key = (op, out)
        children = self._children.get(key)
        if children is None:
            # labels() costs a lock and a dict walk; cache the children per label pair.
            children = (self._requests.labels(op, out), self._latency.labels(op, out))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def watch_audit_batches(self, counts: Callable[[], tuple[int, int]]) -> None:
        """Export the audit writer's group commits: ``counts()`` is (batches, records).

        Read when scraped, so the requests themselves pay nothing for it.
        """
        self.registry.register(_AuditBatchCollector(counts))

    def render(self) -> bytes:
        """The registry in the Prometheus text exposition format."""
        return generate_latest(self.registry)


class _AuditBatchCollector(Collector):
    def __init__(self, counts: Callable[[], tuple[int, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        batches, records = self._counts()
        yield CounterMetricFamily(
            "enclave_kms_audit_batches",
            "Audit group commits by this worker (records held back by requests side by side).",
            value=batches,
        )
        yield CounterMetricFamily(
            "enclave_kms_audit_batched_records",
            "Audit records those group commits carried; divided by the batches, the mean batch.",
            value=records,
        )
