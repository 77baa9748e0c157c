"""Key ids, key ARNs, alias names and alias ARNs: parsing and the forms each operation accepts.

The botocore model documents, per ``KeyId`` member, which forms are accepted: the cryptographic
operations and DescribeKey/GetPublicKey take a key id, key ARN, alias name or alias ARN; the
key-management operations (EnableKey, ScheduleKeyDeletion, PutKeyPolicy, tags, rotation, ...)
and the ``TargetKeyId`` of CreateAlias/UpdateAlias take a key id or key ARN only. A form an
operation does not accept answers ``NotFoundException`` (AWS: "Invalid keyId ..."); an
``arn:`` string that is not a well-formed KMS ARN answers ``InvalidArnException``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

from enclave_kms.errors import InvalidAliasNameException, InvalidArnException, NotFoundException

__all__ = [
    "ALIAS_PREFIX",
    "RESERVED_ALIAS_PREFIX",
    "KeyRef",
    "alias_arn",
    "check_alias_name",
    "key_arn",
    "parse_key_id",
]

ALIAS_PREFIX = "alias/"
# The model: "The alias name cannot begin with alias/aws/ ... reserved for AWS managed keys".
RESERVED_ALIAS_PREFIX = "alias/aws/"

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# AliasNameType pattern in the model is ^[a-zA-Z0-9:/_-]+$; ':' only appears in alias ARNs, the
# alias name itself is alias/[a-zA-Z0-9/_-]+ (CreateAlias documentation).
_ALIAS_NAME = re.compile(r"alias/[a-zA-Z0-9/_-]+")
_ARN = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):kms:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"(?P<kind>key|alias)/(?P<rest>.+)"
)


@dataclass(frozen=True, slots=True)
class KeyRef:
    """A parsed key reference: a key UUID or an alias name (``alias/...``)."""

    kind: Literal["key", "alias"]
    value: str


def key_arn(region: str, account_id: str, key_id: str) -> str:
    """Return ``arn:aws:kms:<region>:<account>:key/<key_id>``."""
    return f"arn:aws:kms:{region}:{account_id}:key/{key_id}"


def alias_arn(region: str, account_id: str, alias_name: str) -> str:
    """Return ``arn:aws:kms:<region>:<account>:<alias_name>`` (``alias_name`` has ``alias/``)."""
    return f"arn:aws:kms:{region}:{account_id}:{alias_name}"


# Every cryptographic call parses its KeyId, and an application sends the same few: a hit
# costs a dict lookup instead of the regular expressions. Only successes are kept.
@functools.lru_cache(maxsize=1024)
def parse_key_id(text: str, *, region: str, account_id: str, allow_alias: bool) -> KeyRef:
    """Parse a ``KeyId`` member in the forms the operation accepts.

    Args:
        text: the member value (already length-checked).
        region: this service's region; ARNs for another region name no key here.
        account_id: this service's account; ARNs for another account name no key here.
        allow_alias: whether the operation accepts alias names and alias ARNs.

    Returns:
        A :class:`KeyRef`; the key or alias may still not exist.

    Raises:
        InvalidArnException: ``text`` starts with ``arn:`` but is not a KMS key or alias ARN.
        NotFoundException: a well-formed reference this operation does not accept, or one for
            another region or account (AWS answers NotFound for both).
    """
    if text.startswith("arn:"):
        m = _ARN.fullmatch(text)
        if m is None:
            raise InvalidArnException(f"Invalid arn {text}")
        if m["region"] != region or m["account"] != account_id:
            raise NotFoundException(f"Invalid arn {text}")
        if m["kind"] == "key":
            if not _UUID.fullmatch(m["rest"]):
                raise NotFoundException(f"Invalid keyId {text}")
            return KeyRef("key", m["rest"])
        name = ALIAS_PREFIX + m["rest"]
        if not allow_alias or not _ALIAS_NAME.fullmatch(name):
            raise NotFoundException(f"Invalid keyId {text}")
        return KeyRef("alias", name)
    if text.startswith(ALIAS_PREFIX):
        if not allow_alias or not _ALIAS_NAME.fullmatch(text):
            raise NotFoundException(f"Invalid keyId {text}")
        return KeyRef("alias", text)
    if _UUID.fullmatch(text):
        return KeyRef("key", text)
    raise NotFoundException(f"Invalid keyId {text}")


def check_alias_name(name: str, *, creating: bool) -> None:
    """Check an ``AliasName`` for CreateAlias/UpdateAlias/DeleteAlias.

    Args:
        name: the alias name (length already checked against 1..256).
        creating: True for CreateAlias, which also refuses the reserved ``alias/aws/`` prefix.

    Raises:
        InvalidAliasNameException: the name does not start with ``alias/``, has characters
            outside ``[a-zA-Z0-9/_-]``, or (when creating) uses the reserved prefix.
    """
    if not name.startswith(ALIAS_PREFIX):
        raise InvalidAliasNameException('Alias must start with the prefix "alias/".')
    if not _ALIAS_NAME.fullmatch(name):
        raise InvalidAliasNameException(
            f"Alias {name} contains characters other than alphanumerics, '/', '_' and '-'."
        )
    if creating and name.startswith(RESERVED_ALIAS_PREFIX):
        raise InvalidAliasNameException(
            f"Cannot create alias with prefix '{RESERVED_ALIAS_PREFIX}'"
        )
