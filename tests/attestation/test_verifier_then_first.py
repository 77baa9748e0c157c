"""``Verifier.verify_then(..., first=)``: the outcome of ``first()``, ``verify``, then ``then``."""

from __future__ import annotations

import threading
import warnings
from datetime import datetime, timedelta
from typing import Any

import pytest
from nitro_test_helpers import T0, index, mini_pki, sample_and_time

from attestation import AttestationError, SignatureError, VerifiedAttestation, Verifier, policy
from attestation.document import MAX_DOCUMENT_SIZE
from attestation.errors import MalformedDocumentError

ENTRIES = index()
NOOP = policy.UnsafeNoOp()
MAIN = threading.current_thread().name


class FirstFailed(Exception):
    """What a failing ``first`` raises."""


class Steps:
    """Records which step ran, in which order and on which thread."""

    def __init__(self, *, first_fails: bool = False) -> None:
        self.log: list[tuple[str, str]] = []
        self._first_fails = first_fails

    def first(self) -> None:
        self.log.append(("first", threading.current_thread().name))
        if self._first_fails:
            raise FirstFailed("the request was refused before the document")

    def then(self, verified: VerifiedAttestation) -> str:
        self.log.append(("then", threading.current_thread().name))
        return f"follow-up for {verified.module_id}"

    @property
    def order(self) -> list[str]:
        return [step for step, _ in self.log]


def _outcome(v: Verifier, data: Any, at: datetime, steps: Steps) -> object:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", policy.UnsafePolicyWarning)
            verified, value = v.verify_then(data, steps.then, policy=NOOP, at=at, first=steps.first)
    except Exception as exc:
        return (type(exc), str(exc))
    return (verified.document, verified.chain, value)


def _sequential(data: Any, at: datetime, steps: Steps) -> object:
    """``first()``, then ``verify``, then ``then``, one after the other on this thread."""
    try:
        steps.first()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", policy.UnsafePolicyWarning)
            verified = Verifier(parallel=False).verify(data, policy=NOOP, at=at)
    except Exception as exc:
        return (type(exc), str(exc))
    return (verified.document, verified.chain, steps.then(verified))


@pytest.mark.parametrize("first_fails", [False, True], ids=["first returns", "first raises"])
@pytest.mark.parametrize("entry", ENTRIES, ids=[e["file"] for e in ENTRIES])
def test_every_fixture_has_the_outcome_of_first_then_verify_then_then(
    entry: dict[str, Any], first_fails: bool
) -> None:
    data, at = sample_and_time(entry["file"])
    reference = Steps(first_fails=first_fails)
    expected = _sequential(data, at, reference)
    for parallel in (True, False):
        steps = Steps(first_fails=first_fails)
        assert _outcome(Verifier(parallel=parallel), data, at, steps) == expected
        # ``then`` may also have run for a document that then failed, but never first.
        assert steps.order[: len(reference.order)] == reference.order


@pytest.mark.parametrize(
    "data", [None, "text", b"", b"\xa0", b"\x00" * (MAX_DOCUMENT_SIZE + 1)],
    ids=["None", "str", "empty", "a map", "too large"],
)  # fmt: skip
def test_an_error_of_first_wins_over_input_that_is_not_a_document(data: object) -> None:
    v = Verifier([mini_pki().root])
    refused = Steps(first_fails=True)
    assert _outcome(v, data, T0, refused)[0] is FirstFailed  # type: ignore[index]
    assert refused.order == ["first"]
    # Once the request is fine, the document's own error is raised.
    admitted = Steps()
    assert _outcome(v, data, T0, admitted)[0] is MalformedDocumentError  # type: ignore[index]
    assert admitted.order == ["first"]


def test_an_error_of_first_wins_over_a_forged_signature() -> None:
    pki = mini_pki()
    forged = bytearray(pki.document())
    forged[-1] ^= 1  # the signature's last byte
    for parallel in (True, False):
        steps = Steps(first_fails=True)
        outcome = _outcome(Verifier([pki.root], parallel=parallel), bytes(forged), T0, steps)
        assert outcome == (FirstFailed, "the request was refused before the document")
        assert steps.order == ["first"]  # nothing that follows it was even tried
        admitted = Steps()
        outcome = _outcome(Verifier([pki.root], parallel=parallel), bytes(forged), T0, admitted)
        assert outcome[0] is SignatureError  # type: ignore[index]


@pytest.mark.usefixtures("patient_caller")
def test_first_runs_on_the_helper_before_the_follow_up_for_a_new_document() -> None:
    pki = mini_pki()
    v = Verifier([pki.root])
    for data in (pki.document(), pki.document(timestamp=T0 - timedelta(seconds=1))):
        steps = Steps()
        _outcome(v, data, T0, steps)
        assert steps.order == ["first", "then"]
        (_, first_thread), (_, then_thread) = steps.log
        assert first_thread == then_thread != MAIN


def test_first_runs_on_the_calling_thread_where_nothing_runs_beside() -> None:
    pki = mini_pki()
    data = pki.document()
    seen = Verifier([pki.root])
    _outcome(seen, data, T0, Steps())
    for v in (seen, Verifier([pki.root], parallel=False)):  # a cached document; no helper
        steps = Steps()
        outcome = _outcome(v, data, T0, steps)
        assert isinstance(outcome, tuple) and str(outcome[-1]).startswith("follow-up for ")
        assert steps.log == [("first", MAIN), ("then", MAIN)]


def test_a_refused_document_after_first_is_reported_as_the_verifier_would() -> None:
    pki = mini_pki()
    data = pki.document()
    steps = Steps()
    late = T0 + timedelta(days=30)  # the leaf has expired
    outcome = _outcome(Verifier([pki.root]), data, late, steps)
    assert isinstance(outcome, tuple) and issubclass(outcome[0], AttestationError)
    assert outcome == _sequential(data, late, Steps())
    assert steps.order[0] == "first"
