"""The ``Condition`` element of a key policy: parsing and evaluation (IAM semantics).

Internal to :mod:`enclave_kms.policy`. The rules follow the IAM User Guide, "IAM JSON policy
elements: Condition operators" and "Conditions with multiple context keys or values":

* condition key names compare case-insensitively (``aws:SourceIp`` == ``AWS:SOURCEIP``);
* several operators in one block, and several keys under one operator, are ANDed;
* several values for one key are ORed; for a negated operator they are NORed (the request value
  must match none of them);
* a key absent from the request makes the condition false, except for a negated operator
  (``StringNotEquals`` ...), which is then true, ``...IfExists`` (true) and ``Null`` (tests
  presence);
* ``ForAllValues:`` is true when the key is absent or empty, ``ForAnyValue:`` is false.

We treat an empty multi-valued context value (``[]``) as absent: IAM's ``Null`` documentation
says ``"false"`` checks that the key "exists and its value is not null", and ``ForAllValues``
is documented as true for both "missing" and "empty".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from enclave_kms._policy_typed import (
    ORDERINGS,
    ArnPattern,
    IpNetwork,
    parse_base64,
    parse_date,
    parse_ip_address,
    parse_ip_network,
    parse_number,
)
from enclave_kms._policy_wildcards import WildcardSet, compile_wildcards
from enclave_kms.errors import MalformedPolicyDocumentException

__all__ = [
    "ConditionTest",
    "check_context_values",
    "normalize_context",
    "parse_conditions",
]

# Base operator (lower-case) -> (canonical name, comparison kind, negated).
_BASE_OPERATORS: dict[str, tuple[str, str, bool]] = {
    "stringequals": ("StringEquals", "equals", False),
    "stringnotequals": ("StringNotEquals", "equals", True),
    "stringequalsignorecase": ("StringEqualsIgnoreCase", "equals_ic", False),
    "stringnotequalsignorecase": ("StringNotEqualsIgnoreCase", "equals_ic", True),
    "stringlike": ("StringLike", "like", False),
    "stringnotlike": ("StringNotLike", "like", True),
    "bool": ("Bool", "bool", False),
    "null": ("Null", "null", False),
    # ArnEquals and ArnLike match alike (the IAM guide describes both with wildcards).
    "arnequals": ("ArnEquals", "arn", False),
    "arnnotequals": ("ArnNotEquals", "arn", True),
    "arnlike": ("ArnLike", "arn", False),
    "arnnotlike": ("ArnNotLike", "arn", True),
    # Numeric* and Date*: kind "<type>_<ordering>" (see _policy_typed.ORDERINGS).
    "numericequals": ("NumericEquals", "num_eq", False),
    "numericnotequals": ("NumericNotEquals", "num_eq", True),
    "numericlessthan": ("NumericLessThan", "num_lt", False),
    "numericlessthanequals": ("NumericLessThanEquals", "num_le", False),
    "numericgreaterthan": ("NumericGreaterThan", "num_gt", False),
    "numericgreaterthanequals": ("NumericGreaterThanEquals", "num_ge", False),
    "dateequals": ("DateEquals", "date_eq", False),
    "datenotequals": ("DateNotEquals", "date_eq", True),
    "datelessthan": ("DateLessThan", "date_lt", False),
    "datelessthanequals": ("DateLessThanEquals", "date_le", False),
    "dategreaterthan": ("DateGreaterThan", "date_gt", False),
    "dategreaterthanequals": ("DateGreaterThanEquals", "date_ge", False),
    "ipaddress": ("IpAddress", "ip", False),
    "notipaddress": ("NotIpAddress", "ip", True),
    # IAM defines no negated binary operator.
    "binaryequals": ("BinaryEquals", "binary", False),
}
_PARSERS = {"num": (parse_number, "a number"), "date": (parse_date, "a date")}
_IF_EXISTS = "ifexists"
_QUALIFIERS = {"foranyvalue": "ForAnyValue", "forallvalues": "ForAllValues"}
_BOOL_WORDS = frozenset({"true", "false"})


@dataclass(frozen=True, slots=True)
class ConditionTest:
    """One ``operator: {key: values}`` pair, precompiled for evaluation.

    Attributes:
        operator: the operator as written, e.g. ``ForAnyValue:StringLike``.
        key: the condition key, lower-cased (key names are case-insensitive in IAM).
        key_display: the condition key as written in the policy (for audit reasons).
        kind: ``equals``, ``equals_ic``, ``like``, ``bool``, ``null``, ``arn``, ``ip``,
            ``binary``, or ``num_<ordering>`` / ``date_<ordering>`` (``eq``, ``lt``, ``le``,
            ``gt``, ``ge``).
        negated: whether the operator is a ``...Not...`` operator.
        if_exists: whether the ``...IfExists`` suffix is present.
        qualifier: ``ForAnyValue``, ``ForAllValues`` or ``None``.
        values: the policy values, as strings.
    """

    operator: str
    key: str
    key_display: str
    kind: str
    negated: bool
    if_exists: bool
    qualifier: str | None
    values: tuple[str, ...]
    _exact: frozenset[str]
    _patterns: WildcardSet | None
    _bounds: tuple[Decimal, ...] = ()
    _arns: tuple[ArnPattern, ...] = ()
    _networks: tuple[IpNetwork, ...] = ()
    _binaries: frozenset[bytes] = frozenset()

    def describe(self) -> str:
        """A short text naming the operator and key (never the request's value)."""
        return f"{self.operator} on {self.key_display}"

    def _any_match(self, value: str) -> bool:
        # The positive comparison: does the request value match at least one policy value (OR)?
        if self.kind == "equals":
            return value in self._exact
        if self.kind in ("equals_ic", "bool"):
            return value.casefold() in self._exact
        if self.kind == "like":  # parse always compiles the patterns
            return self._patterns is not None and self._patterns.matches(value)
        if self.kind == "arn":
            return any(pattern.matches(value) for pattern in self._arns)
        if self.kind == "ip":
            address = parse_ip_address(value)
            # An address is never in a range of the other IP version (``in`` is then False).
            return address is not None and any(address in net for net in self._networks)
        if self.kind == "binary":
            return parse_base64(value) in self._binaries
        # Numeric* / Date*: the request value <ordering> at least one policy value.
        value_type, _, ordering = self.kind.partition("_")
        parsed = _PARSERS[value_type][0](value)
        if parsed is None:
            return False  # not a number / a date: no match (see _policy_typed)
        compare = ORDERINGS[ordering]
        return any(compare(parsed, bound) for bound in self._bounds)

    def holds(self, context: Mapping[str, tuple[str, ...]]) -> bool:
        """Evaluate against a normalized context (see :func:`normalize_context`)."""
        request_values = context.get(self.key)
        if self.kind == "null":
            # Null: "true" means the key must be absent, "false" that it must be present; OR.
            absent = request_values is None
            return any((value == "true") == absent for value in self.values)
        if request_values is None:
            if self.if_exists:
                return True
            if self.qualifier == "ForAllValues":
                # The ForAllValues trap: a missing or empty key makes it true (IAM documents this),
                # so an Allow with ForAllValues alone also allows requests without the key.
                return True
            if self.qualifier == "ForAnyValue":
                return False
            # IAM: absent key -> no match -> false; a negated operator on an absent key is true.
            return self.negated
        if self.negated:
            # NOR over the policy values for each request value.
            results = [not self._any_match(value) for value in request_values]
        else:
            results = [self._any_match(value) for value in request_values]
        if self.qualifier == "ForAllValues":
            return all(results)
        if self.qualifier == "ForAnyValue":
            return any(results)
        # No set qualifier on a multi-valued request value (IAM warns against this): we keep the
        # negated operator the exact complement of the positive one, so a positive operator holds
        # if any request value matches and a negated one holds only if none matches.
        return all(results) if self.negated else any(results)


def _malformed(message: str) -> MalformedPolicyDocumentException:
    return MalformedPolicyDocumentException(message)


def _split_operator(name: str, where: str) -> tuple[str | None, str, str, bool, bool]:
    """Return (qualifier, canonical base, kind, negated, if_exists) for an operator name."""
    qualifier: str | None = None
    rest = name
    if ":" in name:
        prefix, _, rest = name.partition(":")
        qualifier = _QUALIFIERS.get(prefix.lower())
        if qualifier is None:
            raise _malformed(f"{where} uses an unknown condition set qualifier: {prefix!r}")
    lowered = rest.lower()
    if_exists = lowered.endswith(_IF_EXISTS) and lowered != _IF_EXISTS
    base = lowered[: -len(_IF_EXISTS)] if if_exists else lowered
    entry = _BASE_OPERATORS.get(base)
    if entry is None:
        raise _malformed(f"{where} uses an unsupported condition operator: {name!r}")
    canonical, kind, negated = entry
    if kind == "null" and (if_exists or qualifier is not None):
        # IAM: "...IfExists" can be added to any operator except Null; a set qualifier is
        # meaningless for a presence test.
        raise _malformed(f"{where} uses an invalid condition operator: {name!r}")
    return qualifier, canonical, kind, negated, if_exists


def _value_text(raw: object, operator: str, key: str, where: str) -> str:
    # IAM accepts JSON booleans and numbers as condition values and compares their text.
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, str):
        return raw
    if isinstance(raw, int | float):
        return str(raw)
    raise _malformed(f"{where}: condition {operator} on {key!r} has a value that is not a string")


def parse_conditions(
    block: object, where: str, *, variables_forbidden: bool
) -> tuple[ConditionTest, ...]:
    """Parse a statement's ``Condition`` element.

    Args:
        block: the decoded JSON value of ``Condition``.
        where: names the statement in error messages.
        variables_forbidden: reject ``${...}`` policy variables (Version 2012-10-17 defines
            them and we do not substitute them; leaving them literal would silently disable a
            Deny).

    Returns:
        The tests, in document order.

    Raises:
        MalformedPolicyDocumentException: the block is not a valid condition block.
    """
    if not isinstance(block, dict) or not block:
        raise _malformed(f"{where} has a Condition element that is not a non-empty JSON object")
    tests: list[ConditionTest] = []
    for operator, keys in block.items():
        qualifier, canonical, kind, negated, if_exists = _split_operator(operator, where)
        if not isinstance(keys, dict) or not keys:
            raise _malformed(f"{where}: condition {operator} must map condition keys to values")
        for key, raw_values in keys.items():
            if not key or key != key.strip():
                raise _malformed(f"{where}: condition {operator} has an invalid key {key!r}")
            raw_list = raw_values if isinstance(raw_values, list) else [raw_values]
            if not raw_list:
                raise _malformed(f"{where}: condition {operator} on {key!r} has no values")
            values = tuple(_value_text(raw, operator, key, where) for raw in raw_list)
            if variables_forbidden and any("${" in value for value in values):
                raise _malformed(
                    f"{where}: condition {operator} on {key!r} uses a policy variable, "
                    "which is not supported"
                )
            if kind in ("bool", "null") and any(v.lower() not in _BOOL_WORDS for v in values):
                raise _malformed(
                    f"{where}: condition {operator} on {key!r} needs the value true or false"
                )
            exact: frozenset[str] = frozenset()
            patterns: WildcardSet | None = None
            bounds: tuple[Decimal, ...] = ()
            arns: tuple[ArnPattern, ...] = ()
            ip_networks: tuple[IpNetwork, ...] = ()
            binaries: frozenset[bytes] = frozenset()
            value_type = kind.partition("_")[0]
            if value_type in _PARSERS:
                parse, wanted = _PARSERS[value_type]
                parsed = [parse(value) for value in values]
                if any(bound is None for bound in parsed):
                    raise _malformed(
                        f"{where}: condition {operator} on {key!r} needs {wanted} as its value"
                    )
                bounds = tuple(bound for bound in parsed if bound is not None)
            elif kind == "arn":
                arns = tuple(ArnPattern.compile(value) for value in values)
            elif kind == "ip":
                networks = tuple(parse_ip_network(value) for value in values)
                if any(network is None for network in networks):
                    raise _malformed(
                        f"{where}: condition {operator} on {key!r} needs an IP address or a "
                        "CIDR range as its value"
                    )
                ip_networks = tuple(network for network in networks if network is not None)
            elif kind == "binary":
                decoded = [parse_base64(value) for value in values]
                if any(value is None for value in decoded):
                    raise _malformed(
                        f"{where}: condition {operator} on {key!r} needs base64 as its value"
                    )
                binaries = frozenset(value for value in decoded if value is not None)
            if kind == "equals":
                exact = frozenset(values)
            elif kind in ("equals_ic", "bool"):
                exact = frozenset(value.casefold() for value in values)
            elif kind == "like":
                patterns = compile_wildcards(values, ignore_case=False)
            if kind in ("bool", "null"):
                values = tuple(value.lower() for value in values)
            name = f"{qualifier}:{canonical}" if qualifier else canonical
            tests.append(
                ConditionTest(
                    operator=name + ("IfExists" if if_exists else ""),
                    key=key.lower(),
                    key_display=key,
                    kind=kind,
                    negated=negated,
                    if_exists=if_exists,
                    qualifier=qualifier,
                    values=values,
                    _exact=exact,
                    _patterns=patterns,
                    _bounds=bounds,
                    _arns=arns,
                    _networks=ip_networks,
                    _binaries=binaries,
                )
            )
    return tuple(tests)


def _as_values(key: str, value: object) -> tuple[str, ...]:
    if type(value) is tuple and all(type(item) is str for item in value):
        return value  # the service's multi-valued keys: already a tuple of str
    if isinstance(value, bool):
        return ("true" if value else "false",)
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence):
        out = []
        for item in value:
            if isinstance(item, bool):
                out.append("true" if item else "false")
            elif isinstance(item, str):
                out.append(item)
            else:
                raise TypeError(f"condition key {key!r} has a non-string value in its list")
        return tuple(out)
    raise TypeError(f"condition key {key!r} must be a str, a sequence of str, or a bool")


def check_context_values(context: Mapping[str, str | Sequence[str] | bool]) -> None:
    """Raise the TypeError :func:`normalize_context` would raise, without building anything.

    Raises:
        TypeError: a value is not a str, a sequence of str, or a bool (a caller bug).
    """
    for key, value in context.items():
        if type(value) is not str:  # most values are plain strings: skip the full check
            _as_values(key, value)


def normalize_context(
    context: Mapping[str, str | Sequence[str] | bool],
) -> dict[str, tuple[str, ...]]:
    """Lower-case the key names and turn every value into a tuple of strings.

    Keys differing only in case merge (IAM key names are case-insensitive; this matters for
    ``kms:EncryptionContext:<key>``, whose ``<key>`` part is therefore case-insensitive too).
    Empty lists are dropped: an empty multi-valued key behaves as an absent one.

    Raises:
        TypeError: a value is not a str, a sequence of str, or a bool (a caller bug).
    """
    normalized: dict[str, tuple[str, ...]] = {}
    for key, value in context.items():
        # Plain strings (nearly every value) skip the general conversion.
        values = (value,) if type(value) is str else _as_values(key, value)
        if not values:
            continue
        lowered = key.lower()
        merged = normalized.get(lowered)
        normalized[lowered] = values if merged is None else merged + values
    return normalized
