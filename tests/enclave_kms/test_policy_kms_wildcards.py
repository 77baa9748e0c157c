"""IAM wildcard matching: agrees with a regex reference, linear on hostile patterns."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from enclave_kms._policy_wildcards import Wildcard, compile_wildcards


def _reference(pattern: str, text: str, ignore_case: bool) -> bool:
    # An independent translation: * -> .*, ? -> ., everything else literal (fine on tiny inputs).
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.fullmatch(body, text, flags) is not None


@settings(max_examples=200, deadline=None)
@given(
    pattern=st.text(alphabet="ab*?", max_size=8),
    text=st.text(alphabet="abAB", max_size=10),
    ignore_case=st.booleans(),
)
def test_agrees_with_regex_reference(pattern: str, text: str, ignore_case: bool) -> None:
    expected = _reference(pattern, text, ignore_case)
    assert Wildcard.compile(pattern, ignore_case=ignore_case).matches(text) is expected


def test_examples() -> None:
    assert Wildcard.compile("kms:Generate*", ignore_case=True).matches("KMS:GENERATEDATAKEY")
    assert not Wildcard.compile("kms:Generate*", ignore_case=False).matches("kms:generateX")
    assert Wildcard.compile("a*a", ignore_case=False).matches("aa")
    assert not Wildcard.compile("a*a", ignore_case=False).matches("a")
    assert Wildcard.compile("*", ignore_case=False).matches("")
    assert not Wildcard.compile("?", ignore_case=False).matches("")
    assert compile_wildcards(["x", "*"], ignore_case=False).matches("anything")
    assert not compile_wildcards(["x", "y"], ignore_case=False).matches("z")


def test_hostile_pattern_on_long_value_is_answered() -> None:
    # With a backtracking regex this pair would not finish; segment matching is O(n * m).
    hostile = Wildcard.compile("*a" * 20 + "*c", ignore_case=False)
    assert not hostile.matches("a" * 8192)
    assert hostile.matches("a" * 8192 + "c")
    hostile_q = Wildcard.compile("*a?" * 10 + "*c", ignore_case=False)
    assert not hostile_q.matches("a" * 4096)


@settings(max_examples=200, deadline=None)
@given(
    patterns=st.lists(st.text(alphabet="ab*?", max_size=6), min_size=1, max_size=4),
    text=st.text(alphabet="abAB", max_size=8),
    ignore_case=st.booleans(),
)
def test_set_agrees_with_any_single_pattern(
    patterns: list[str], text: str, ignore_case: bool
) -> None:
    # The set sorts patterns into exact names, trailing-* prefixes and the rest; the outcome
    # must be the OR of the patterns matched one by one (and of the regex reference).
    expected = any(_reference(p, text, ignore_case) for p in patterns)
    assert compile_wildcards(patterns, ignore_case=ignore_case).matches(text) is expected


def test_set_shapes_on_action_names() -> None:
    actions = compile_wildcards(
        ["kms:Create*", "kms:Decrypt", "kms:*Key", "kms:Get?ublicKey"], ignore_case=True
    )
    for action in ("kms:CreateAlias", "KMS:DECRYPT", "kms:DescribeKey", "kms:GetPublicKey"):
        assert actions.matches(action), action
    for action in ("kms:Decrypt2", "kms:Encrypt", "kms:GetKeyPolicy", "kms:Creat"):
        assert not actions.matches(action), action
    # Prefix and suffix of "ab*ba" must not overlap: "aba" is too short.
    assert not compile_wildcards(["ab*ba"], ignore_case=False).matches("aba")
    assert compile_wildcards(["ab*ba"], ignore_case=False).matches("abba")
