"""A policy with no effects may be applied on the helper; others only to authentic documents."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from nitro_test_helpers import T0, index, mini_pki, sample_and_time

from attestation import SignatureError, VerifiedAttestation, Verifier, policy
from attestation.errors import PolicyError
from attestation.policy import only_checks

ENTRIES = index()
MAIN = threading.current_thread().name
PCR0 = "ab" * 48


class CountingPolicy:
    """A policy with an effect: it counts the documents it was shown (say, for a quota)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def check(self, result: VerifiedAttestation) -> None:
        self.seen.append(threading.current_thread().name)


class StricterMaxAge(policy.MaxAge):
    """A subclass may do anything in ``check``: it is not taken for a plain check."""


@pytest.mark.parametrize(
    "p",
    [
        policy.MaxAge(timedelta(minutes=5)),
        policy.RequirePublicKey(),
        policy.Nonce(b"n"),
        policy.ModuleId("i-0"),
        policy.RejectDebugMode(),
        policy.PCR(0, PCR0),
        policy.PCRs({0: PCR0}),
        policy.ImageMeasurement(pcr0=PCR0),
        policy.AllOf(
            [policy.RejectDebugMode(), policy.AnyOf([policy.Nonce(b"a"), policy.Nonce(b"b")])]
        ),
    ],
    ids=lambda p: type(p).__name__,
)  # fmt: skip
def test_this_package_s_policies_only_check(p: object) -> None:
    assert only_checks(p)


@pytest.mark.parametrize(
    "p",
    [
        policy.UnsafeNoOp(),  # warns on every use
        CountingPolicy(),
        StricterMaxAge(timedelta(minutes=5)),
        policy.AllOf([policy.RejectDebugMode(), CountingPolicy()]),
        policy.AnyOf([policy.Nonce(b"a"), policy.AllOf([CountingPolicy()])]),
    ],
    ids=["UnsafeNoOp", "custom", "subclass", "AllOf with custom", "nested custom"],
)
def test_anything_else_is_applied_only_to_an_authentic_document(p: object) -> None:
    assert not only_checks(p)


def _then(_: VerifiedAttestation) -> str:
    return "follow-up"


def test_a_policy_with_effects_never_sees_a_forged_document() -> None:
    pki = mini_pki()
    v = Verifier([pki.root])
    counting = CountingPolicy()
    v.verify_then(pki.document(), _then, policy=counting, at=T0)  # warms the chain
    forged = bytearray(pki.document(timestamp=T0 - timedelta(seconds=1)))
    forged[-1] ^= 1
    with pytest.raises(SignatureError):
        v.verify_then(bytes(forged), _then, policy=counting, at=T0)
    v.verify_then(pki.document(timestamp=T0 - timedelta(seconds=2)), _then, policy=counting, at=T0)
    assert counting.seen == [MAIN, MAIN]


@pytest.mark.usefixtures("patient_caller")
def test_a_plain_check_runs_on_the_helper_and_its_rejection_still_comes_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: list[str] = []
    original = policy.Nonce.check

    def spy(self: policy.Nonce, result: VerifiedAttestation) -> None:
        threads.append(threading.current_thread().name)
        original(self, result)

    monkeypatch.setattr(policy.Nonce, "check", spy)
    pki = mini_pki()
    v = Verifier([pki.root])
    then_ran: list[str] = []

    def then(_: VerifiedAttestation) -> str:
        then_ran.append("yes")
        raise RuntimeError("the follow-up's own error")

    with pytest.raises(PolicyError, match="nonce"):
        v.verify_then(pki.document(), then, policy=policy.Nonce(b"other"), at=T0)
    assert threads and threads[0] != MAIN
    assert then_ran == []  # as in the sequential order: a rejected document goes no further


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["file"] for e in ENTRIES])
def test_every_fixture_gets_the_sequential_outcome_under_a_plain_policy(
    entry: dict[str, Any],
) -> None:
    data, at = sample_and_time(entry["file"])
    # Most samples carry no public_key: the policy rejects them after every other check.
    p = policy.AllOf([policy.MaxAge(timedelta(minutes=1)), policy.RequirePublicKey()])

    def outcome(v: Verifier) -> object:
        try:
            verified, value = v.verify_then(data, _then, policy=p, at=at)
        except Exception as exc:
            return (type(exc), str(exc))
        return (verified.document, value)

    expected = outcome(Verifier(parallel=False))
    assert outcome(Verifier()) == expected
