"""Benchmark the KMS core in-process against moto, and Recipient against its crypto floor.

Run: ``.venv/bin/python bench/core.py [--seconds 1.5]``

Measures ops/s of
* GenerateDataKey (AES_256, with an encryption context) on a temp-dir SQLite store;
* Decrypt of one such blob;
* GenerateDataKey with a Recipient: a fresh attestation document per call from the simulated
  NSM, same enclave (documents are minted before timing: minting is the enclave's cost);
* moto's in-process ``mock_aws`` GenerateDataKey through boto3 (the usual local stand-in);
* the floor of a Recipient call: one ECDSA P-384 verification (the document signature) plus one
  RSA-2048 OAEP encryption (the CMS key transport), with ``cryptography`` directly.

Rows that are compared are measured interleaved (best of many short slices, see ``_timing``):
GenerateDataKey with Decrypt, and Recipient with its floor.

Targets: plain GenerateDataKey >= 5x moto; Recipient >= 0.8x the floor.

After the timed rows, an untimed pass splits a Recipient call into the document's ECDSA check
(timed where the verifier makes it, on the calling thread) and everything else, and times the
same check alone. While the check runs, the verifier's helper thread decodes the document and
builds the response on the other core. The last two lines of output show how much that slows
the check on the machine at hand, and what the rest of the call costs.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cryptography
from _timing import rates
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

import attestation.verifier
from attestation import Verifier
from attestation._beside import certificate_hint, leaf_key_of
from attestation._cose import Sign1, decode_sign1, verify_es384
from attestation.nsm import Nsm
from attestation.testing.nsm import SimulatedNsm
from attestation.testing.pki import TestPki
from enclave_kms._rootkey import RootKey
from enclave_kms.model import (
    Caller,
    CreateKeyRequest,
    DecryptRequest,
    GenerateDataKeyRequest,
    RecipientInfo,
)
from enclave_kms.service import KmsService
from enclave_kms.store.sqlite import SqliteStore

REGION = "eu-west-1"
ACCOUNT = "111122223333"
# The account root: the default key policy admits it (and no other identity) without edits.
CALLER = Caller(principal_arn=f"arn:aws:iam::{ACCOUNT}:root", account_id=ACCOUNT)
CTX = {"purpose": "bench"}
# Recipient calls of the untimed pass that splits a call into its ECDSA check and the rest.
_SPLIT_CALLS = 1500


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second of ``fn`` over about ``seconds`` (after a short warm-up)."""
    for _ in range(20):
        fn()
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(10):
            fn()
        n += 10
    return n / elapsed


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
        f"{platform.system()} {platform.release()} {platform.machine()}, {cpu}, "
        f"{os.cpu_count()} logical CPUs; Python {platform.python_version()}, "
        f"cryptography {cryptography.__version__}"
    )


def bench_moto(seconds: float) -> float:
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("kms", region_name=REGION)
        key_id = client.create_key()["KeyMetadata"]["KeyId"]
        return rate(
            lambda: client.generate_data_key(
                KeyId=key_id, KeySpec="AES_256", EncryptionContext=CTX
            ),
            seconds,
        )


def floor_call() -> Callable[[], None]:
    """One call's worth of the crypto a Recipient call cannot avoid, with ``cryptography``."""
    signer = ec.generate_private_key(ec.SECP384R1())
    verifier = signer.public_key()
    message = os.urandom(4000)
    signature = signer.sign(message, ec.ECDSA(hashes.SHA384()))
    enclave = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)

    def floor() -> None:
        verifier.verify(signature, message, ec.ECDSA(hashes.SHA384()))
        enclave.encrypt(os.urandom(32), oaep)

    return floor


@dataclass(frozen=True)
class Split:
    """Medians, in microseconds, of the untimed pass over Recipient calls."""

    call_us: float
    check_inside_us: float  # the document's ECDSA check, inside the call
    check_alone_us: float  # the same check with nothing beside it

    def print(self) -> None:
        """Two lines under the summary."""
        beside = self.check_inside_us - self.check_alone_us
        rest = self.call_us - self.check_inside_us
        print(
            f"  ECDSA check inside the call    {self.check_inside_us:7.0f} us median"
            f" (alone {self.check_alone_us:.0f} us: {beside:+.0f} us beside the helper)"
        )
        print(
            f"  Recipient call                 {self.call_us:7.0f} us median"
            f" = the check + {rest:.0f} us of everything else"
        )


def _messages_and_keys(
    documents: list[bytes],
) -> list[tuple[Sign1, ec.EllipticCurvePublicKey]]:
    # One key object per leaf certificate, as the verifier keeps them (a new key object costs
    # OpenSSL extra work on its first check).
    keys: dict[bytes, ec.EllipticCurvePublicKey] = {}
    pairs = []
    for document in documents:
        message = decode_sign1(document)
        leaf = certificate_hint(message.payload) or b""
        key = keys.get(leaf) or leaf_key_of(leaf)
        assert key is not None, "the simulated NSM signs with a P-384 leaf"
        keys[leaf] = key
        pairs.append((message, key))
    return pairs


def split_recipient_call(call: Callable[[bytes], object], documents: list[bytes]) -> Split:
    """Time Recipient calls, the ECDSA check inside them, and the same check alone.

    The check is timed by wrapping the verifier's ``verify_es384`` (only the calling thread
    runs it for these documents), so this pass is kept apart from the timed rows.
    """
    # The verifier calls the check by its module-level name: time it there, then put it back.
    verifier_names = vars(attestation.verifier)
    inside: list[float] = []

    def timed_check(message: Sign1, key: ec.EllipticCurvePublicKey) -> None:
        started = time.perf_counter()
        try:
            verify_es384(message, key)
        finally:
            inside.append(time.perf_counter() - started)

    calls: list[float] = []
    verifier_names["verify_es384"] = timed_check
    try:
        for document in documents:
            started = time.perf_counter()
            call(document)
            calls.append(time.perf_counter() - started)
    finally:
        verifier_names["verify_es384"] = verify_es384
    alone: list[float] = []
    for message, key in _messages_and_keys(documents):
        started = time.perf_counter()
        verify_es384(message, key)
        alone.append(time.perf_counter() - started)
    return Split(*(statistics.median(x) * 1e6 for x in (calls, inside, alone)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="time per measurement")
    args = parser.parse_args()
    seconds = args.seconds
    print(f"machine: {machine()}")

    with tempfile.TemporaryDirectory() as tmp:
        pki = TestPki.create(1, valid_from=datetime.now(UTC) - timedelta(hours=1))
        store = SqliteStore(Path(tmp) / "bench.sqlite3", RootKey(os.urandom(32)))
        service = KmsService(
            store, region=REGION, account_id=ACCOUNT, verifier=Verifier(trusted_roots=[pki.root])
        )
        meta = service.create_key(CALLER, CreateKeyRequest()).key_metadata
        assert meta is not None
        key_id = meta.key_id
        gdk = GenerateDataKeyRequest(key_id=key_id, key_spec="AES_256", encryption_context=CTX)
        blob = service.generate_data_key(CALLER, gdk).ciphertext_blob
        dec = DecryptRequest(ciphertext_blob=blob, encryption_context=CTX)

        plain = rates(
            {
                "gdk": lambda: service.generate_data_key(CALLER, gdk),
                "decrypt": lambda: service.decrypt(CALLER, dec),
            },
            2 * seconds,
        )

        enclave = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        spki = enclave.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        nsm = Nsm(SimulatedNsm(pki))
        # Enough fresh documents for the timed loop (minting is the enclave's cost, not ours).
        supply = int(4000 * seconds) + 100
        # A distinct nonce per document: documents minted within one millisecond would
        # otherwise be byte-identical (deterministic signatures) and be served by the
        # verifier's document cache, which this row must not measure.
        docs = [
            nsm.get_attestation_doc(public_key=spki, nonce=i.to_bytes(8, "big"))
            for i in range(supply + 20 + _SPLIT_CALLS)
        ]
        assert len(set(docs)) == len(docs), "documents must be distinct"
        it = iter(docs[_SPLIT_CALLS:])

        def recipient(document: bytes) -> None:
            req = GenerateDataKeyRequest(
                key_id=key_id, key_spec="AES_256", encryption_context=CTX,
                recipient=RecipientInfo("RSAES_OAEP_SHA_256", document),
            )  # fmt: skip
            service.generate_data_key(CALLER, req)

        def recipient_call() -> None:
            document = next(it, None)
            if document is None:
                raise SystemExit("bench/core.py: minted too few documents for this machine")
            recipient(document)

        # Interleaved with its floor, so a burst of load elsewhere hits both alike.
        paired = rates({"recipient": recipient_call, "floor": floor_call()}, 2 * seconds)
        split = split_recipient_call(recipient, docs[:_SPLIT_CALLS])
        service.close()

    moto = bench_moto(seconds)
    plain_gdk, decrypt = plain["gdk"], plain["decrypt"]
    with_recipient, floor = paired["recipient"], paired["floor"]
    print(f"GenerateDataKey                {plain_gdk:10.0f} ops/s")
    print(f"Decrypt                        {decrypt:10.0f} ops/s")
    print(f"GenerateDataKey + Recipient    {with_recipient:10.0f} ops/s")
    print(f"moto mock_aws GenerateDataKey  {moto:10.0f} ops/s")
    print(f"floor (P-384 verify + RSA-2048 OAEP encrypt) {floor:8.0f} ops/s")
    print(f"GenerateDataKey / moto         {plain_gdk / moto:10.1f}x  (target >= 5x)")
    print(f"Decrypt / moto GDK             {decrypt / moto:10.1f}x")
    print(f"Recipient / floor              {with_recipient / floor:10.2f}x  (target >= 0.8x)")
    split.print()


if __name__ == "__main__":
    main()
