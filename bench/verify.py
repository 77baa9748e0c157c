"""Benchmark: attestation verification against the ECDSA P-384 work it cannot avoid.

Run: ``.venv/bin/python bench/verify.py [--seconds N]``. All in one process, at a fixed
verification time (the document's own timestamp):

(a) cold: full verification with empty caches (5 signature checks + parsing), as the
    verifier does it by default (chain validated on a helper thread while the calling thread
    checks the COSE signature), and all on the calling thread (``parallel=False``); plus, for
    context, the total rate of two threads verifying cold at once in each mode (the helper
    then serves one of them and the other runs sequentially);
(b) steady state: a new document from an enclave already seen (the chain is cached; decoding
    and 1 signature check remain), and the same document again (served by the document cache,
    as when an enclave SDK reuses its document; time checks and policy still run);
(c) the raw cost of the P-384 verifications with ``cryptography`` directly: 1 (the COSE
    signature) and 5 (four chain links + COSE); and, for context only, the 5 with each key
    parsed fresh, as a cold verification must (OpenSSL's first use of a new key is slower).

Targets: steady (new document) / one-signature limit >= 0.85 and cold / five-signature
limit >= 0.85.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import sys
import threading
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import cbor2
import cryptography
from cryptography import x509
from cryptography.hazmat.backends.openssl.backend import backend
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_public_key,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _timing import rates

from attestation import Verifier, policy
from attestation._cose import sig_structure

ROOT = Path(__file__).resolve().parent.parent
DOCUMENT = ROOT / "fixtures" / "nitro" / "blocky-nitrite-nitro_attestation.cose"


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"CPU: {cpu}; cores: {os.cpu_count()}; Python {platform.python_version()}; "
        f"cryptography {cryptography.__version__}; {backend.openssl_version_text()}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    args = parser.parse_args()

    data = DOCUMENT.read_bytes()
    arr = cbor2.loads(data)
    payload = cbor2.loads(arr[2])
    at = datetime.fromtimestamp(payload["timestamp"] / 1000, tz=UTC)
    accept = policy.RejectDebugMode()  # a real policy, cheap, and no warning

    # (c) the unavoidable signature checks, with keys and signatures already parsed.
    leaf = x509.load_der_x509_certificate(payload["certificate"])
    bundle = [x509.load_der_x509_certificate(c) for c in payload["cabundle"]]
    chain = [leaf, *reversed(bundle)]  # leaf, instance, zonal, regional, root
    links = []
    for child, parent in itertools.pairwise(chain):
        key = parent.public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey)
        links.append((key, child.signature, child.tbs_certificate_bytes))
    leaf_key = leaf.public_key()
    assert isinstance(leaf_key, ec.EllipticCurvePublicKey)
    sig = arr[3]
    cose_sig = encode_dss_signature(
        int.from_bytes(sig[:48], "big"), int.from_bytes(sig[48:], "big")
    )
    tbs = sig_structure(arr[0], arr[2])
    ecdsa = ec.ECDSA(hashes.SHA384())

    def one_sig() -> None:
        leaf_key.verify(cose_sig, tbs, ecdsa)

    def five_sigs() -> None:
        for key, signature, body in links:
            key.verify(signature, body, ecdsa)
        leaf_key.verify(cose_sig, tbs, ecdsa)

    # For context, not a target: a cold verification cannot reuse key objects, and OpenSSL's
    # first verification with a freshly parsed key costs more than with a warm one.
    spkis = [c.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
             for c in chain[1:]]  # fmt: skip
    leaf_spki = leaf_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)

    def five_sigs_fresh_keys() -> None:
        for spki, (_key, signature, body) in zip(spkis, links, strict=True):
            fresh = load_der_public_key(spki)
            assert isinstance(fresh, ec.EllipticCurvePublicKey)
            fresh.verify(signature, body, ecdsa)
        fresh_leaf = load_der_public_key(leaf_spki)
        assert isinstance(fresh_leaf, ec.EllipticCurvePublicKey)
        fresh_leaf.verify(cose_sig, tbs, ecdsa)

    cold_verifier, repeat_verifier = Verifier(), Verifier()
    one_thread_verifier = Verifier(parallel=False)
    # Steady state for a service: each request brings a new document from an enclave already
    # seen, so the chain is cached but the document is not. With the document cache off, the
    # same bytes stand in for such a document: decoding and the signature check run each time.
    steady_verifier = Verifier(document_cache_size=0)

    def cold() -> None:
        cold_verifier.clear_cache()
        cold_verifier.verify(data, policy=accept, at=at)

    def cold_one_thread() -> None:
        one_thread_verifier.clear_cache()
        one_thread_verifier.verify(data, policy=accept, at=at)

    def steady() -> None:
        steady_verifier.verify(data, policy=accept, at=at)

    def repeat() -> None:
        repeat_verifier.verify(data, policy=accept, at=at)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning here would mean an unsafe policy crept in
        r = rates(
            {
                "cold": cold,
                "cold_one_thread": cold_one_thread,
                "steady": steady,
                "repeat": repeat,
                "one": one_sig,
                "five": five_sigs,
                "five_fresh": five_sigs_fresh_keys,
            },
            5 * args.seconds,
        )
    cold_rate, warm_rate, one_rate, five_rate = r["cold"], r["steady"], r["one"], r["five"]
    two_callers = {
        parallel: two_threads_cold(data, accept, at, parallel=parallel, seconds=args.seconds)
        for parallel in (True, False)
    }

    print(machine())
    print(f"document: {DOCUMENT.name} ({len(data)} bytes), verified at {at.isoformat()}")
    print(f"(a) cold verification            {cold_rate:10.0f} docs/s  (helper thread)")
    print(f"(a) cold, calling thread only    {r['cold_one_thread']:10.0f} docs/s  (parallel=False)")
    print(f"    two callers at once, total   {two_callers[True]:10.0f} docs/s  (helper thread)")
    print(f"    two callers at once, total   {two_callers[False]:10.0f} docs/s  (parallel=False)")
    print(f"(b) new document, same enclave   {warm_rate:10.0f} docs/s  (chain cached)")
    print(f"(b) same document again          {r['repeat']:10.0f} docs/s  (document cached)")
    print(f"(c) 1 x P-384 ECDSA verify       {one_rate:10.0f} ops/s")
    print(f"(c) 5 x P-384 ECDSA verify       {five_rate:10.0f} ops/s")
    print(f"    same, keys parsed fresh      {r['five_fresh']:10.0f} ops/s  (context only)")
    steady_ratio, cold_ratio = warm_rate / one_rate, cold_rate / five_rate
    print(f"steady / one-signature limit     {steady_ratio:10.2f}  (target >= 0.85)")
    print(f"cold / five-signature limit      {cold_ratio:10.2f}  (target >= 0.85)")
    print(f"cold / five fresh-key signatures {cold_rate / r['five_fresh']:10.2f}  (context only)")
    one_thread_ratio = r["cold_one_thread"] / five_rate
    print(f"cold on one thread / five-sig    {one_thread_ratio:10.2f}  (context only)")
    return 0


def two_threads_cold(
    data: bytes, accept: policy.Policy, at: datetime, *, parallel: bool, seconds: float
) -> float:
    """Total cold verifications per second of two threads sharing one verifier mode."""
    verifiers = [Verifier(parallel=parallel) for _ in range(2)]
    counts = [0, 0]
    deadline = time.perf_counter() + seconds

    def work(i: int) -> None:
        while time.perf_counter() < deadline:
            verifiers[i].clear_cache()
            verifiers[i].verify(data, policy=accept, at=at)
            counts[i] += 1

    start = time.perf_counter()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - start)


if __name__ == "__main__":
    raise SystemExit(main())
