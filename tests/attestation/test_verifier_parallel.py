"""The cold path's helper thread: same outcomes as one thread, used only when alone, fork-safe."""

from __future__ import annotations

import os
import signal
import sys
import threading
import warnings
from datetime import datetime
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from nitro_test_helpers import (
    BLOCKY,
    T0,
    genuine_payload,
    index,
    mini_pki,
    raw,
    sample_and_time,
    sign,
)

import attestation._helper_thread as helper_thread
from attestation import AttestationError, CertificateChainError, SignatureError, Verifier, policy
from attestation._chain import ChainValidator
from attestation._helper_thread import Helper, helper_if_alone

ENTRIES = index()
NOOP = policy.UnsafeNoOp()


def _verify(v: Verifier, data: bytes, at: datetime) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", policy.UnsafePolicyWarning)
        return v.verify(data, policy=NOOP, at=at)


def _outcome(v: Verifier, data: bytes, at: datetime) -> object:
    try:
        result = _verify(v, data, at)
    except AttestationError as exc:
        return (type(exc), str(exc))
    return (result.document, result.chain, result.verified_at, result.public_key_der)


@pytest.fixture
def validating_threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    names: list[str] = []
    original = ChainValidator._validate

    def spy(self: ChainValidator, leaf: bytes, bundle: Any, at: datetime) -> Any:
        names.append(threading.current_thread().name)
        return original(self, leaf, bundle, at)

    monkeypatch.setattr(ChainValidator, "_validate", spy)
    return names


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["file"] for e in ENTRIES])
def test_every_fixture_has_the_same_outcome_on_one_thread_and_two(entry: dict[str, Any]) -> None:
    data, at = sample_and_time(entry["file"])
    assert _outcome(Verifier(), data, at) == _outcome(Verifier(parallel=False), data, at)


@pytest.mark.usefixtures("patient_caller")
def test_a_cold_verification_validates_the_chain_on_the_helper(
    validating_threads: list[str],
) -> None:
    _verify(Verifier(), raw(BLOCKY), T0)
    _verify(Verifier(parallel=False), raw(BLOCKY), T0)
    main = threading.current_thread().name
    assert validating_threads[0].startswith("attestation") and validating_threads[0] != main
    assert validating_threads[1] == main


def test_a_warm_chain_never_involves_the_helper(validating_threads: list[str]) -> None:
    v = Verifier(document_cache_size=0)
    for _ in range(3):
        _verify(v, raw(BLOCKY), T0)
    assert len(validating_threads) == 1


def test_the_helper_is_not_used_while_another_caller_holds_it(
    validating_threads: list[str],
) -> None:
    with helper_if_alone() as held:  # another thread's verification, in effect
        assert held is not None
        _verify(Verifier(), raw(BLOCKY), T0)
    assert validating_threads == [threading.current_thread().name]


def test_the_helper_runs_jobs_in_order_on_its_own_daemon_thread() -> None:
    helper = Helper()
    ran: list[tuple[int, str]] = []

    def record(i: int) -> int:
        ran.append((i, threading.current_thread().name))
        return i * i

    jobs = [helper.submit(record, i) for i in range(5)]
    finished = threading.Event()
    helper.submit(finished.set)
    assert finished.wait(30)  # the helper got to every job before anyone asked for it
    assert [job.result() for job in jobs] == [0, 1, 4, 9, 16]
    assert [i for i, _ in ran] == [0, 1, 2, 3, 4]
    assert {name for _, name in ran} == {"attestation-helper"}
    thread = next(t for t in threading.enumerate() if t.name == "attestation-helper")
    assert thread.daemon  # never keeps a process from exiting


def test_a_job_that_raises_raises_in_the_caller_and_the_helper_goes_on() -> None:
    helper = Helper()

    def fail() -> None:
        raise CertificateChainError("chain broken")

    failed = helper.submit(fail)
    with pytest.raises(CertificateChainError, match="chain broken"):
        failed.result()
    with pytest.raises(CertificateChainError):  # asked again: the same outcome
        failed.result()
    assert helper.submit(lambda: "next").result() == "next"


def test_a_job_the_helper_has_not_started_is_made_by_the_caller_and_only_once() -> None:
    helper = Helper()
    release = threading.Event()
    made: list[str] = []

    def make() -> str:
        made.append(threading.current_thread().name)
        return "made"

    blocking = helper.submit(release.wait, 30)  # keeps the helper busy
    waiting = helper.submit(make)
    assert waiting.result() == "made"  # without waiting for the helper
    assert made == [threading.current_thread().name]
    release.set()
    assert blocking.result() is True
    assert helper.submit(make).result() == "made"  # the helper has passed the taken job...
    assert len(made) == 2  # ...without making it again


def test_without_a_thread_verification_runs_on_the_caller(
    monkeypatch: pytest.MonkeyPatch, validating_threads: list[str]
) -> None:
    def no_thread() -> Helper:
        raise RuntimeError("can't create new thread at interpreter shutdown")

    monkeypatch.setattr(helper_thread, "_helper", None)
    monkeypatch.setattr(helper_thread, "Helper", no_thread)
    with helper_if_alone() as helper:
        assert helper is None
    assert _outcome(Verifier(), raw(BLOCKY), T0) == _outcome(
        Verifier(parallel=False), raw(BLOCKY), T0
    )
    assert set(validating_threads) == {threading.current_thread().name}


def test_a_chain_failure_wins_over_a_bad_signature() -> None:
    untrusted = mini_pki()
    forged = bytearray(untrusted.document())
    forged[-1] ^= 1  # the signature's last byte
    for parallel in (True, False):
        with pytest.raises(CertificateChainError):
            _verify(Verifier(parallel=parallel), bytes(forged), T0)
        trusting = Verifier([untrusted.root], parallel=parallel)
        with pytest.raises(SignatureError):
            _verify(trusting, bytes(forged), T0)


def test_a_leaf_key_of_the_wrong_curve_is_a_chain_error_either_way() -> None:
    p256 = mini_pki(leaf_curve=ec.SECP256R1)
    fields = genuine_payload()
    fields["certificate"] = p256.leaf.public_bytes(Encoding.DER)
    fields["cabundle"] = p256.cabundle
    # ES384 fixes the signature at 96 bytes, so some P-384 key signs: the leaf cannot.
    data = sign(ec.generate_private_key(ec.SECP384R1()), cbor2.dumps(fields))
    for parallel in (True, False):
        with pytest.raises(CertificateChainError, match="P-384"):
            _verify(Verifier([p256.root], parallel=parallel), data, T0)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
@pytest.mark.usefixtures("patient_caller")
def test_a_forked_child_gets_a_helper_of_its_own(validating_threads: list[str]) -> None:
    _verify(Verifier(), raw(BLOCKY), T0)  # the parent's helper thread now exists
    assert validating_threads[0].startswith("attestation")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        signal.alarm(30)  # a child waiting on the parent's (absent) thread must not hang CI
        try:
            _verify(Verifier(), raw(BLOCKY), T0)
            ok = validating_threads[-1].startswith("attestation") and len(validating_threads) == 2
            os._exit(0 if ok else 3)
        except BaseException:
            sys.stderr.flush()
            os._exit(4)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
