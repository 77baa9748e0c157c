"""Load threads that keep a ledger of every acknowledged call, and the check of that ledger.

An acknowledged call is one whose full 200 answer the client read. Only those are promises
the server made; a call whose connection broke under it (the server was killed mid-call) is
*in doubt*: it may or may not have been committed, and either outcome is correct. In-doubt
calls are counted, never checked.
"""

from __future__ import annotations

import base64
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from crash_server import CallInDoubt, CallNotSent, CallRefused, RawKmsClient


@dataclass(frozen=True)
class AckedBlob:
    """A ciphertext the server returned, with the plaintext it promised it decrypts to."""

    key_id: str
    blob: str
    plaintext: bytes
    context: dict[str, str]
    operation: str


@dataclass
class Ledger:
    """Everything the load threads saw, guarded by one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    keys: list[str] = field(default_factory=list)
    blobs: list[AckedBlob] = field(default_factory=list)
    acked: int = 0
    in_doubt: Counter[str] = field(default_factory=Counter)
    not_sent: int = 0
    refused: Counter[str] = field(default_factory=Counter)

    def acked_count(self) -> int:
        with self.lock:
            return self.acked

    def random_key(self, rng: random.Random) -> str | None:
        with self.lock:
            return rng.choice(self.keys) if self.keys else None


class LoadThreads:
    """``threads`` workers mixing CreateKey, GenerateDataKey and Encrypt until stopped."""

    def __init__(self, port: int, ledger: Ledger, seed: int, threads: int = 4) -> None:
        self.port = port
        self.ledger = ledger
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(i, seed * 1000 + i), daemon=True)
            for i in range(threads)
        ]
        self.errors: list[BaseException] = []

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)

    def _run(self, writer: int, seed: int) -> None:
        rng = random.Random(seed)
        client = RawKmsClient(self.port)
        seq = 0
        try:
            while not self._stop.is_set():
                seq += 1
                self._one_call(client, rng, writer, seq)
        except BaseException as exc:  # surfaced by the test, never swallowed
            self.errors.append(exc)
        finally:
            client.close()

    def _one_call(self, client: RawKmsClient, rng: random.Random, writer: int, seq: int) -> None:
        ledger = self.ledger
        key = ledger.random_key(rng)
        context = {"writer": str(writer), "seq": str(seq)}
        roll = rng.random()
        op = "CreateKey" if key is None or roll < 0.15 else "GenerateDataKey"
        if op == "GenerateDataKey" and roll > 0.7:
            op = "Encrypt"
        try:
            if op == "CreateKey":
                answer = client.call("CreateKey", {"Description": f"crash {writer}/{seq}"})
                with ledger.lock:
                    ledger.keys.append(str(answer["KeyMetadata"]["KeyId"]))
                    ledger.acked += 1
                return
            body: dict[str, object] = {"KeyId": key, "EncryptionContext": context}
            if op == "GenerateDataKey":
                body["KeySpec"] = "AES_256"
                answer = client.call(op, body)
                plaintext = base64.b64decode(answer["Plaintext"])
            else:
                plaintext = rng.randbytes(rng.randint(1, 256))
                body["Plaintext"] = base64.b64encode(plaintext).decode()
                answer = client.call(op, body)
            acked = AckedBlob(str(key), str(answer["CiphertextBlob"]), plaintext, context, op)
            with ledger.lock:
                ledger.blobs.append(acked)
                ledger.acked += 1
        except CallNotSent:
            with ledger.lock:
                ledger.not_sent += 1
            time.sleep(0.02)  # the server is down or restarting: do not spin
        except CallInDoubt:
            with ledger.lock:
                ledger.in_doubt[op] += 1
            time.sleep(0.02)
        except CallRefused as exc:
            with ledger.lock:
                ledger.refused[f"{op}: {exc.status} {exc.error_type}"] += 1


@dataclass(frozen=True)
class Losses:
    """What the restarted server no longer honours (every list should be empty)."""

    missing_keys: list[str]
    bad_blobs: list[str]

    @property
    def count(self) -> int:
        return len(self.missing_keys) + len(self.bad_blobs)


def check_ledger(port: int, ledger: Ledger, threads: int = 4) -> Losses:
    """Every acknowledged key is described; every acknowledged blob decrypts to its plaintext."""
    local = threading.local()
    clients: list[RawKmsClient] = []

    def client() -> RawKmsClient:
        if not hasattr(local, "client"):
            local.client = RawKmsClient(port, timeout=30)
            clients.append(local.client)
        c: RawKmsClient = local.client
        return c

    def key_lost(key_id: str) -> str | None:
        try:
            meta = client().call("DescribeKey", {"KeyId": key_id})["KeyMetadata"]
        except CallRefused as exc:
            return f"{key_id}: {exc}"
        if meta["KeyId"] != key_id or meta["KeyState"] != "Enabled":
            return f"{key_id}: {meta['KeyId']} in state {meta['KeyState']}"
        return None

    def blob_lost(item: AckedBlob) -> str | None:
        try:
            answer = client().call(
                "Decrypt", {"CiphertextBlob": item.blob, "EncryptionContext": item.context}
            )
        except CallRefused as exc:
            return f"{item.operation} blob under {item.key_id}: {exc}"
        if base64.b64decode(answer["Plaintext"]) != item.plaintext:
            return f"{item.operation} blob under {item.key_id}: different plaintext"
        if not str(answer["KeyId"]).endswith(f"key/{item.key_id}"):
            return f"{item.operation} blob under {item.key_id}: decrypted by {answer['KeyId']}"
        return None

    with ThreadPoolExecutor(threads) as pool:
        missing = [m for m in pool.map(key_lost, ledger.keys) if m is not None]
        bad = [m for m in pool.map(blob_lost, ledger.blobs) if m is not None]
    for c in clients:
        c.close()
    return Losses(missing, bad)
