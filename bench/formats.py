"""Micro-benchmark of the two ciphertext formats: CMS CiphertextForRecipient and the blob.

Usage: ``python bench/formats.py [--iterations N]``. Prints the median time per operation.
The RSA private-key operation dominates CMS decryption; the blob is pure AES-GCM + HKDF.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
import uuid
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric import rsa

from enclave_kms._ciphertext import open_blob, seal
from enclave_kms.cms import (
    build_ciphertext_for_recipient,
    decrypt_ciphertext_for_recipient,
    parse_ciphertext_for_recipient,
)


def _median_us(fn: Callable[[], object], iterations: int) -> float:
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


def main() -> None:
    """Run the benchmark and print one line per operation."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=300)
    n = parser.parse_args().iterations

    key_id = str(uuid.uuid4())
    backing = bytes(range(32))
    ctx = {"purpose": "bench", "tenant": "t1"}
    for bits in (2048, 4096):
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        public = key.public_key()
        for size in (32, 4096):
            content = bytes(size)
            envelope = build_ciphertext_for_recipient(content, public)
            rows = {
                "cms build": _median_us(
                    functools.partial(build_ciphertext_for_recipient, content, public), n
                ),
                "cms parse": _median_us(
                    functools.partial(parse_ciphertext_for_recipient, envelope), n
                ),
                "cms decrypt": _median_us(
                    functools.partial(decrypt_ciphertext_for_recipient, envelope, key), n
                ),
            }
            for name, us in rows.items():
                print(
                    f"{name:12} RSA-{bits} {size:5} B  {us:9.1f} us  ({len(envelope)} B envelope)"
                )

    for size in (32, 4096):
        plaintext = bytes(size)
        blob = seal(
            key_id=key_id,
            key_version=1,
            backing_key=backing,
            plaintext=plaintext,
            encryption_context=ctx,
        )
        seal_us = _median_us(
            functools.partial(
                seal,
                key_id=key_id,
                key_version=1,
                backing_key=backing,
                plaintext=plaintext,
                encryption_context=ctx,
            ),
            n,
        )
        open_us = _median_us(
            functools.partial(open_blob, blob, backing_key=backing, encryption_context=ctx), n
        )
        print(f"blob seal             {size:5} B  {seal_us:9.1f} us  ({len(blob)} B blob)")
        print(f"blob open             {size:5} B  {open_us:9.1f} us")


if __name__ == "__main__":
    main()
