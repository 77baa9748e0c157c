"""Soak benchmark: mixed KMS traffic against enclave-kms serve for a while; does memory hold?

Client threads (raw keep-alive sockets, each request SigV4-signed by botocore just before it is
sent) run a weighted mix for ``--seconds``: GenerateDataKey, Decrypt (of recent ciphertexts),
Encrypt, GenerateRandom, DescribeKey, and GenerateDataKey with a ``Recipient`` whose
attestation document is minted by :mod:`attestation.testing` (the server trusts that test
root through ``--trust-root``). Every loop is bounded by the deadline; loopback only.

Printed: the machine, ops/s per interval, p50/p99 latency per operation, errors by type, the
server's RSS (``VmRSS`` from ``/proc/<pid>/status``, summed over its processes) at start and
end and per interval, and a verdict: after a warm-up (the first 20% of the run), the median RSS
of the last third must not exceed the median of the first third by more than
max(5%, 4 MiB). That catches a leak of a few hundred bytes per request in a 30-second run.

    .venv/bin/python bench/soak.py [--seconds 30] [--threads 4] [--interval 2] [--workers 1]
                                   [--store postgresql://... | --pg]
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _servers import (  # bench/ is not a package: its directory is on sys.path
    RawConnection,
    Server,
    machine,
    signed_request,
    throwaway_postgres,
)

# Operation weights: data-key traffic dominates, as in an envelope-encryption deployment.
MIX = (
    ("GenerateDataKey", 30),
    ("Decrypt", 25),
    ("Encrypt", 15),
    ("DescribeKey", 15),
    ("GenerateRandom", 10),
    ("GenerateDataKey+Recipient", 5),
)


def recipient_document(work: Path) -> tuple[bytes, Path]:
    """A minted attestation document carrying an RSA-2048 public key, and its root PEM."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from attestation.testing.mint import mint_document
    from attestation.testing.pki import TestPki

    pki = TestPki.create(valid_from=datetime.now(UTC) - timedelta(hours=1))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    root = work / "test-root.pem"
    root.write_bytes(pki.root.public_bytes(serialization.Encoding.PEM))
    return mint_document(pki, public_key=spki), root


@dataclass
class Stats:
    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    done: int = 0
    blobs: deque[tuple[str, dict[str, str]]] = field(default_factory=lambda: deque(maxlen=512))


def _body(op: str, key: str, doc_b64: str, rng: random.Random, stats: Stats) -> dict[str, Any]:
    context = {"purpose": "soak", "n": str(rng.randrange(1000))}
    if op == "GenerateDataKey":
        return {"KeyId": key, "KeySpec": "AES_256", "EncryptionContext": context}
    if op == "GenerateDataKey+Recipient":
        return {
            "KeyId": key,
            "KeySpec": "AES_256",
            "Recipient": {
                "KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256",
                "AttestationDocument": doc_b64,
            },
        }
    if op == "Encrypt":
        plaintext = base64.b64encode(rng.randbytes(rng.randint(1, 1024))).decode()
        return {"KeyId": key, "Plaintext": plaintext, "EncryptionContext": context}
    if op == "Decrypt":
        with stats.lock:
            blob, ctx = rng.choice(stats.blobs)
        return {"CiphertextBlob": blob, "EncryptionContext": ctx}
    if op == "GenerateRandom":
        return {"NumberOfBytes": rng.randint(1, 1024)}
    return {"KeyId": key}  # DescribeKey


def _worker(port: int, key: str, doc_b64: str, seed: int, deadline: float, stats: Stats) -> None:
    rng = random.Random(seed)
    names = [name for name, _ in MIX]
    weights = [w for _, w in MIX]
    conn: RawConnection | None = None
    while time.monotonic() < deadline:
        op = rng.choices(names, weights)[0]
        body = _body(op, key, doc_b64, rng, stats)
        target = "GenerateDataKey" if op.startswith("GenerateDataKey") else op
        request = signed_request(port, target, body)
        t0 = time.perf_counter()
        try:
            if conn is None:
                conn = RawConnection(port)
            status, raw = conn.roundtrip(request)
        except OSError as exc:
            if conn is not None:
                conn.close()
            conn = None
            with stats.lock:
                stats.errors[f"{op}: transport {type(exc).__name__}"] += 1
            time.sleep(0.05)
            continue
        elapsed = time.perf_counter() - t0
        answer = json.loads(raw or b"{}")
        with stats.lock:
            stats.done += 1
            if status != 200:
                stats.errors[f"{op}: {status} {answer.get('__type', '?')}"] += 1
                continue
            stats.latencies.setdefault(op, []).append(elapsed)
            if op in ("GenerateDataKey", "Encrypt"):
                stats.blobs.append((answer["CiphertextBlob"], body["EncryptionContext"]))
            if op == "GenerateDataKey+Recipient" and "CiphertextForRecipient" not in answer:
                stats.errors[f"{op}: 200 without CiphertextForRecipient"] += 1
    if conn is not None:
        conn.close()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1e3


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="run time (30)")
    parser.add_argument("--threads", type=int, default=4, help="client threads (4)")
    parser.add_argument("--interval", type=float, default=2.0, help="sampling interval (2 s)")
    parser.add_argument("--workers", type=int, default=1, help="server workers (1)")
    parser.add_argument(
        "--store", help="PostgreSQL URL for the server, migrated first (default: SQLite)"
    )
    parser.add_argument(
        "--pg", action="store_true", help="start a throwaway PostgreSQL cluster and use it"
    )
    parser.add_argument("--seed", type=int, default=1, help="client RNG seed (1)")
    args = parser.parse_args(argv)
    seconds = max(5.0, min(args.seconds, 3600.0))  # bounded
    interval = max(0.5, min(args.interval, seconds / 5))
    threads = max(1, min(args.threads, 32))

    work = Path(tempfile.mkdtemp(prefix="enclave-kms-soak-"))
    stats = Stats()
    samples: list[tuple[float, int, int]] = []  # (elapsed s, ops in interval, RSS KiB)
    disk: dict[str, int] = {}  # SQLite file name -> bytes, at the end
    stack = ExitStack()
    try:
        store = args.store
        if args.pg and store is None:
            store = stack.enter_context(throwaway_postgres()).url
        if store is not None:
            from enclave_kms.store._pg_migrate import migrate

            migrate(store)
        doc, root = recipient_document(work)
        doc_b64 = base64.b64encode(doc).decode()
        with Server(work, workers=args.workers, store_url=store, trust_roots=[root]) as srv:
            conn = RawConnection(srv.port)
            _, raw = conn.roundtrip(signed_request(srv.port, "CreateKey", {}))
            key = json.loads(raw)["KeyMetadata"]["KeyId"]
            for _ in range(8):  # seed the Decrypt pool
                ctx = {"purpose": "soak", "n": "seed"}
                body = {"KeyId": key, "KeySpec": "AES_256", "EncryptionContext": ctx}
                _, raw = conn.roundtrip(signed_request(srv.port, "GenerateDataKey", body))
                stats.blobs.append((json.loads(raw)["CiphertextBlob"], ctx))
            conn.close()
            rss_start = srv.rss_kib()
            cpu0 = time.process_time()
            start = time.monotonic()
            deadline = start + seconds
            pool = [
                threading.Thread(
                    target=_worker,
                    args=(srv.port, key, doc_b64, args.seed * 100 + i, deadline, stats),
                )
                for i in range(threads)
            ]
            for thread in pool:
                thread.start()
            last = 0
            while (now := time.monotonic()) < deadline:
                time.sleep(min(interval, max(0.0, deadline - now)))
                with stats.lock:
                    done = stats.done
                samples.append((time.monotonic() - start, done - last, srv.rss_kib()))
                last = done
            for thread in pool:
                thread.join(timeout=60)
            client_cpu = (time.process_time() - cpu0) / seconds
            rss_end = srv.rss_kib()
            server_cpu = sum(srv.cpu_seconds().values())
            # On SQLite, the files too: a WAL that never starts over grows with every write.
            data_dir = work / f"data-{srv.port}"
            disk = {f.name: f.stat().st_size for f in data_dir.glob("*.sqlite3*")}
    finally:
        stack.close()
        shutil.rmtree(work, ignore_errors=True)

    print(f"machine: {machine()}")
    print(
        f"soak: {seconds:.0f} s, {threads} client threads (raw keep-alive, signed per request), "
        f"{args.workers} server worker(s), store "
        f"{'PostgreSQL' if args.store or args.pg else 'SQLite'}"
    )
    print("\nthroughput per interval:")
    prev = 0.0
    for t, ops, rss in samples:
        print(
            f"  {prev:6.1f}-{t:6.1f} s  {ops / (t - prev):8.0f} ops/s   RSS {rss / 1024:7.1f} MiB"
        )
        prev = t
    total = sum(len(v) for v in stats.latencies.values())
    print(f"\n{'operation':<28} {'ok':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for name, _ in MIX:
        lat = stats.latencies.get(name, [])
        if lat:
            print(f"{name:<28} {len(lat):>8} {_pct(lat, 0.5):>8.2f} {_pct(lat, 0.99):>8.2f}")
    every = [x for v in stats.latencies.values() for x in v]
    print(
        f"{'all':<28} {total:>8} {_pct(every, 0.5):>8.2f} {_pct(every, 0.99):>8.2f}   "
        f"({total / seconds:.0f} ops/s overall)"
    )
    print(f"errors: {sum(stats.errors.values())}")
    for kind, n in stats.errors.most_common():
        print(f"  {n:>6}  {kind}")
    print(
        f"client CPU: {client_cpu:.2f} cores; server CPU over its life: {server_cpu:.1f} s "
        "(client and server share this machine's cores)"
    )
    print(f"server RSS: start {rss_start / 1024:.1f} MiB, end {rss_end / 1024:.1f} MiB")
    if disk:
        wal = sum(size for name, size in disk.items() if name.endswith("-wal"))
        print(
            f"store on disk at the end: {sum(disk.values()) / 2**20:.1f} MiB, of which the WAL "
            f"{wal / 2**20:.1f} MiB"
        )
    return _verdict(samples, seconds)


def _verdict(samples: list[tuple[float, int, int]], seconds: float) -> int:
    steady = [rss for t, _, rss in samples if t > 0.2 * seconds]
    third = len(steady) // 3
    if third < 1:
        print("memory verdict: not enough samples after warm-up (run longer)")
        return 0
    first, final = statistics.median(steady[:third]), statistics.median(steady[-third:])
    allowed = max(0.05 * first, 4096)
    growth = final - first
    verdict = "OK: no unbounded growth seen" if growth <= allowed else "GROWING: possible leak"
    print(
        f"memory verdict: {verdict} (median RSS first third after warm-up {first / 1024:.1f} "
        f"MiB, last third {final / 1024:.1f} MiB, growth {growth / 1024:+.1f} MiB, allowed "
        f"{allowed / 1024:.1f} MiB)"
    )
    return 0 if growth <= allowed else 1


if __name__ == "__main__":
    sys.exit(main())
