"""IAM wildcard patterns (``*`` any run, ``?`` one character): the matching of ``StringLike``,
``ArnLike`` components, and statement ``Action`` and ``Resource`` lists.

Internal to :mod:`enclave_kms.policy`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Wildcard", "WildcardSet", "compile_wildcards"]


def _segment_at(text: str, pos: int, segment: str) -> bool:
    # Does ``segment`` (which may hold ``?``) match ``text`` starting at ``pos``?
    if "?" not in segment:
        return text.startswith(segment, pos)
    if pos + len(segment) > len(text):
        return False
    return all(c == "?" or c == text[pos + i] for i, c in enumerate(segment))


def _find_segment(text: str, segment: str, start: int, end: int) -> int:
    # Leftmost occurrence of ``segment`` inside text[start:end], or -1.
    if "?" not in segment:
        return text.find(segment, start, end)
    for pos in range(start, end - len(segment) + 1):
        if _segment_at(text, pos, segment):
            return pos
    return -1


@dataclass(frozen=True, slots=True)
class Wildcard:
    """One IAM wildcard pattern: ``*`` matches any run, ``?`` one character, the rest literal.

    Matching splits the pattern on ``*`` and places each middle segment at its leftmost
    occurrence, which is exact for star globs and takes O(len(text) * len(pattern)) at worst.
    A backtracking regex would let a pattern like ``*a*a*a*a*b`` in a policy take exponential
    time on a long, caller-controlled encryption-context value.
    """

    pattern: str
    ignore_case: bool
    _segments: tuple[str, ...]
    # The shapes key policies nearly always use ("kms:*", "kms:Generate*", an exact name, an
    # exact ARN): at most one "*" and no "?", matched with plain string operations.
    _simple: bool

    @classmethod
    def compile(cls, pattern: str, *, ignore_case: bool) -> Wildcard:
        """Prepare a pattern (lower-cased when ``ignore_case``)."""
        folded = pattern.lower() if ignore_case else pattern
        segments = tuple(folded.split("*"))
        return cls(pattern, ignore_case, segments, len(segments) <= 2 and "?" not in folded)

    def matches(self, text: str) -> bool:
        """Whether the whole of ``text`` matches the pattern."""
        return self.matches_folded(text.lower() if self.ignore_case else text)

    def matches_folded(self, text: str) -> bool:
        """Like :meth:`matches`, for a ``text`` already lower-cased when ``ignore_case``."""
        segments = self._segments
        if self._simple:
            if len(segments) == 1:
                return text == segments[0]
            first, last = segments
            # The length test keeps the prefix and the suffix from overlapping.
            return (
                len(text) >= len(first) + len(last)
                and text.startswith(first)
                and text.endswith(last)
            )
        if len(segments) == 1:
            return len(text) == len(segments[0]) and _segment_at(text, 0, segments[0])
        first, last = segments[0], segments[-1]
        end = len(text) - len(last)
        if end < len(first) or not _segment_at(text, 0, first):
            return False
        if not _segment_at(text, end, last):
            return False
        pos = len(first)
        for segment in segments[1:-1]:
            if not segment:
                continue
            found = _find_segment(text, segment, pos, end)
            if found < 0:
                return False
            pos = found + len(segment)
        return True


@dataclass(frozen=True, slots=True)
class WildcardSet:
    """Several wildcard patterns, ORed. Build it with :func:`compile_wildcards`.

    Statements list many actions (``kms:Create*``, ``kms:Describe*``, ...), so the set folds the
    case once and tests exact names with one set lookup and trailing-``*`` prefixes with one
    ``str.startswith`` over all of them; only the other shapes are matched one by one.
    """

    patterns: tuple[Wildcard, ...]
    anything: bool
    ignore_case: bool
    _exact: frozenset[str]  # patterns without "*" or "?" (folded)
    _prefixes: tuple[str, ...]  # "<literal>*" patterns without "?": the folded literal
    _others: tuple[Wildcard, ...]

    def matches(self, text: str) -> bool:
        """Whether ``text`` matches at least one pattern."""
        if self.anything:
            return True
        if self.ignore_case:
            text = text.lower()
        if text in self._exact or text.startswith(self._prefixes):
            return True
        return any(pattern.matches_folded(text) for pattern in self._others)


def compile_wildcards(patterns: Sequence[str], *, ignore_case: bool) -> WildcardSet:
    """Compile IAM wildcard patterns (``*`` any run, ``?`` one character) into a matcher set."""
    compiled = tuple(Wildcard.compile(p, ignore_case=ignore_case) for p in patterns)
    exact: set[str] = set()
    prefixes: list[str] = []
    others: list[Wildcard] = []
    for wildcard in compiled:
        segments = wildcard._segments
        if wildcard._simple and len(segments) == 1:
            exact.add(segments[0])
        elif wildcard._simple and not segments[1]:
            prefixes.append(segments[0])
        else:
            others.append(wildcard)
    return WildcardSet(
        compiled,
        anything="*" in patterns,
        ignore_case=ignore_case,
        _exact=frozenset(exact),
        _prefixes=tuple(prefixes),
        _others=tuple(others),
    )
