"""Access keys and the principals they stand for; the credentials file.

A credential maps an AWS-style access key id to its secret, an optional session token (temporary
credentials) and the principal ARN that key policies and audit records see. The credentials file
is JSON::

    {"credentials": [
        {"access_key_id": "AKIA...", "secret_access_key": "...", "principal": "root"},
        {"access_key_id": "ASIA...", "secret_access_key": "...", "session_token": "...",
         "principal": "role/enclave"}
    ]}

``principal`` is ``root``, ``user/NAME``, ``role/NAME`` (in the service's account; a path may
precede the name, ``role/team/NAME``) or a full ``arn:aws:iam::ACCOUNT:...`` ARN. STS
``assumed-role`` session ARNs are refused: they drop the role's path, which key-policy
conditions on ``aws:PrincipalArn`` depend on.

Secrets are Python ``str`` objects here because botocore's signer takes them as such; Python
cannot guarantee they are erased from memory. They are kept out of reprs and never logged.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import string
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from enclave_kms.errors import ValidationException

__all__ = [
    "CREDENTIALS_FILENAME",
    "Credential",
    "CredentialSet",
    "generate_root_credential",
    "load_credentials_file",
    "principal_arn",
    "write_credentials_file",
]

CREDENTIALS_FILENAME = "credentials.json"

# AWS access key ids are 20 characters: a 4-letter type prefix (AKIA long-term, ASIA temporary)
# and 16 characters of base32 ([A-Z2-7]); secrets are 40 characters of base64-like text.
_ACCESS_KEY_RE = re.compile(r"^[A-Z0-9]{16,128}$")
_ACCOUNT_RE = re.compile(r"^\d{12}$")
_NAME_RE = re.compile(r"^[\w+=,.@/-]{1,512}$")
# IAM identities only. An STS assumed-role ARN is refused: it drops the role's path, so a key
# policy condition on aws:PrincipalArn naming the role (with its path) could not match it and a
# Deny would miss. Name the role itself (role/PATH/NAME); its path is then known.
_ARN_RE = re.compile(r"^arn:aws[\w-]*:iam::(\d{12}):(root|user/.+|role/.+)$")
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"
_KEY_ID_ALPHABET = string.ascii_uppercase + "234567"


@dataclass(frozen=True)
class Credential:
    """One access key and the principal it authenticates as.

    Attributes:
        access_key_id: the public key id (``AKIA...`` or ``ASIA...``).
        secret_access_key: the signing secret; never shown in reprs.
        principal_arn: the IAM ARN that policies and audit records see.
        account_id: the 12-digit account of the principal.
        session_token: for temporary credentials, the token the client must send in
            ``X-Amz-Security-Token``; ``None`` for long-term keys.
    """

    access_key_id: str
    secret_access_key: str = field(repr=False)
    principal_arn: str
    account_id: str
    session_token: str | None = field(default=None, repr=False)


def principal_arn(principal: str, account_id: str) -> str:
    """Turn ``root``, ``user/NAME``, ``role/NAME`` or a full ARN into an IAM principal ARN.

    Raises:
        ValidationException: the principal or the account id is not well formed.
    """
    if not _ACCOUNT_RE.match(account_id):
        raise ValidationException("account id must be 12 digits")
    if principal.startswith("arn:"):
        if not _ARN_RE.match(principal):
            raise ValidationException(
                f"not an IAM principal ARN (root, user or role; not an STS session): {principal!r}"
            )
        return principal
    if principal == "root":
        return f"arn:aws:iam::{account_id}:root"
    kind, _, name = principal.partition("/")
    if kind not in ("user", "role") or not _NAME_RE.match(name):
        raise ValidationException(
            f"principal must be 'root', 'user/NAME', 'role/NAME' or an ARN, not {principal!r}"
        )
    return f"arn:aws:iam::{account_id}:{kind}/{name}"


def _account_of(arn: str) -> str:
    return arn.split(":")[4]


class CredentialSet:
    """The access keys the server accepts, looked up by access key id."""

    def __init__(self, credentials: Iterable[Credential] = ()) -> None:
        """Index the credentials.

        Raises:
            ValidationException: two credentials share an access key id.
        """
        self._by_id: dict[str, Credential] = {}
        for cred in credentials:
            if cred.access_key_id in self._by_id:
                raise ValidationException(f"duplicate access key id {cred.access_key_id}")
            self._by_id[cred.access_key_id] = cred

    def get(self, access_key_id: str) -> Credential | None:
        """Return the credential for an access key id, or ``None`` if unknown."""
        return self._by_id.get(access_key_id)

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Credential]:
        return iter(self._by_id.values())

    def __repr__(self) -> str:
        return f"CredentialSet(access_key_ids={sorted(self._by_id)!r})"


def generate_root_credential(account_id: str) -> Credential:
    """Make a fresh long-term access key (AKIA + 16, 40-character secret) for the account root.

    Randomness comes from :mod:`secrets` (the OS CSPRNG).

    Raises:
        ValidationException: the account id is not 12 digits.
    """
    key_id = "AKIA" + "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(16))
    secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))
    return Credential(
        access_key_id=key_id,
        secret_access_key=secret,
        principal_arn=principal_arn("root", account_id),
        account_id=account_id,
    )


def _parse_entry(entry: Mapping[str, Any], account_id: str, where: str) -> Credential:
    try:
        key_id = entry["access_key_id"]
        secret = entry["secret_access_key"]
    except KeyError as exc:
        raise ValidationException(f"{where}: missing {exc.args[0]!r}") from None
    if not isinstance(key_id, str) or not _ACCESS_KEY_RE.match(key_id):
        raise ValidationException(f"{where}: access_key_id must be 16-128 characters [A-Z0-9]")
    if not isinstance(secret, str) or not secret:
        raise ValidationException(f"{where}: secret_access_key must be a non-empty string")
    token = entry.get("session_token")
    if token is not None and (not isinstance(token, str) or not token):
        raise ValidationException(f"{where}: session_token must be a non-empty string")
    principal = entry.get("principal", "root")
    if not isinstance(principal, str):
        raise ValidationException(f"{where}: principal must be a string")
    arn = principal_arn(principal, account_id)
    return Credential(key_id, secret, arn, _account_of(arn), token)


def load_credentials_file(path: Path, *, account_id: str) -> CredentialSet:
    """Read a credentials file (see the module docstring for the format).

    Raises:
        ValidationException: the file is unreadable, not JSON, or an entry is malformed.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValidationException(f"cannot read credentials file {path}: {exc.strerror}") from None
    except ValueError:
        raise ValidationException(f"credentials file {path} is not valid JSON") from None
    entries = data.get("credentials") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ValidationException(f"credentials file {path} needs a 'credentials' list")
    creds = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ValidationException(f"{path}: credentials[{i}] must be an object")
        creds.append(_parse_entry(entry, account_id, f"{path}: credentials[{i}]"))
    return CredentialSet(creds)


def write_credentials_file(path: Path, credentials: Iterable[Credential]) -> None:
    """Create a credentials file readable by its owner only (mode 0600).

    The file must not exist yet: ``O_EXCL`` keeps two starting processes from overwriting each
    other's keys.

    Raises:
        FileExistsError: the file already exists.
    """
    entries = []
    for cred in credentials:
        entry: dict[str, str] = {
            "access_key_id": cred.access_key_id,
            "secret_access_key": cred.secret_access_key,
            "principal": cred.principal_arn,
        }
        if cred.session_token is not None:
            entry["session_token"] = cred.session_token
        entries.append(entry)
    payload = json.dumps({"credentials": entries}, indent=2) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(payload)
