"""The typed condition operators of IAM: ``Numeric*``, ``Date*``, ``Arn*``, ``IpAddress`` and
``BinaryEquals``.

Internal to :mod:`enclave_kms._policy_conditions`. The IAM User Guide ("IAM JSON policy
elements: Condition operators") defines them:

* numeric operators compare numbers (integers or decimals); ``NumericLessThan`` holds when the
  request's value is less than the policy's;
* date operators compare instants, written in the ISO 8601 forms IAM documents (a date, or a
  date and time with ``Z`` or an offset) or as seconds since the epoch, e.g. against
  ``aws:CurrentTime`` and ``aws:EpochTime``;
* ``ArnEquals`` and ``ArnLike`` (the guide describes both alike) match "each of the six
  colon-delimited components of the ARN separately", each with ``*`` and ``?`` wildcards, case
  sensitively: a wildcard never spans a colon;
* ``IpAddress`` / ``NotIpAddress`` take "an IP address or IP address range in CIDR notation" (IPv4
  or IPv6), compared with ``aws:SourceIp``. Host bits in a range are ignored, as in
  ``203.0.113.7/24`` for ``203.0.113.0/24``. An IPv4 address that a dual-stack socket reports in
  its IPv6-mapped form (``::ffff:203.0.113.7``) is compared as the IPv4 address it is;
* ``BinaryEquals`` compares bytes; its policy values are written in base64.

A request value that is not a number, a date, an ARN, an IP address or base64 matches no policy
value (so a negated operator holds), as a key of the wrong type cannot satisfy a typed
comparison. A policy value of the wrong type is rejected when the policy is parsed.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from enclave_kms._policy_wildcards import Wildcard

__all__ = [
    "ORDERINGS",
    "ArnPattern",
    "IpAddress",
    "IpNetwork",
    "parse_base64",
    "parse_date",
    "parse_ip_address",
    "parse_ip_network",
    "parse_number",
]

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Comparison kind suffix -> ``request_value <op> policy_value``.
ORDERINGS: dict[str, Callable[[Decimal, Decimal], bool]] = {
    "eq": operator.eq,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_EPOCH = re.compile(r"[+-]?\d+(?:\.\d+)?")
_ARN_PARTS = 6


def parse_number(text: str) -> Decimal | None:
    """A decimal number as IAM writes them (no exponent, no NaN or infinity), else ``None``.

    Decimal, not float: ``NumericEquals`` on ``0.1`` must not depend on binary rounding.
    """
    text = text.strip()
    if not _NUMBER.fullmatch(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid literals
        return None


def parse_date(text: str) -> Decimal | None:
    """Seconds since the epoch of an ISO 8601 date/time or an epoch number, else ``None``.

    A date or time without an offset is read as UTC, as AWS does for ``aws:CurrentTime``.
    """
    text = text.strip()
    if _EPOCH.fullmatch(text):
        return Decimal(text)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = when - datetime(1970, 1, 1, tzinfo=UTC)
    return Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds) / 10**6


def parse_ip_address(text: str) -> IpAddress | None:
    """A request's IP address (IPv6-mapped IPv4 unwrapped), else ``None``."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_ip_network(text: str) -> IpNetwork | None:
    """An ``IpAddress`` policy value: an address (a one-address range) or a CIDR range."""
    text = text.strip()
    _, slash, prefix = text.partition("/")
    if slash and not (prefix.isascii() and prefix.isdigit()):
        return None  # CIDR only: not the netmask forms ("/255.0.0.0") Python also reads
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def parse_base64(text: str) -> bytes | None:
    """The bytes of a base64 text (standard alphabet, padded), else ``None``."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class ArnPattern:
    """One ``Arn*`` policy value: six components, each a case-sensitive wildcard."""

    components: tuple[Wildcard, ...] | None  # None: not an ARN, matches nothing

    @classmethod
    def compile(cls, value: str) -> ArnPattern:
        """Split ``value`` into its six components (the last keeps any further colons)."""
        parts = value.split(":", _ARN_PARTS - 1)
        if len(parts) != _ARN_PARTS:
            return cls(None)
        return cls(tuple(Wildcard.compile(part, ignore_case=False) for part in parts))

    def matches(self, arn: str) -> bool:
        """Whether the request's ``arn`` matches component by component."""
        if self.components is None:
            return False
        parts = arn.split(":", _ARN_PARTS - 1)
        if len(parts) != _ARN_PARTS:
            return False
        return all(c.matches(p) for c, p in zip(self.components, parts, strict=True))
