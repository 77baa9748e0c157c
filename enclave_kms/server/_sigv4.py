"""AWS Signature Version 4 verification for incoming requests.

The expected signature is computed with botocore's own signer (``botocore.auth.SigV4Auth``) over
a request rebuilt from what was received — method, path, query, the *signed* headers only, the
body — at the request's own ``X-Amz-Date``. Reusing the client library's canonicaliser keeps us
byte-compatible with every SDK that signs the same way, instead of maintaining a second one.

Error names and messages follow what AWS answers (AWS General Reference, "Signature Version 4
signing process" and the common errors list):

- no ``Authorization`` header at all → ``MissingAuthenticationTokenException`` ("Missing
  Authentication Token"). AWS JSON services answer an unsigned request with this name; the
  ``IncompleteSignatureException`` family is reserved for a header that *is* present but lacks
  parts, which is what the SDKs' docs list it for.
- a malformed header, a missing Credential/SignedHeaders/Signature, no ``X-Amz-Date``, or a
  signed-header list without ``host`` and ``x-amz-date`` → ``IncompleteSignatureException``.
- an unknown access key → ``UnrecognizedClientException``.
- a wrong signature, wrong scope, or a date outside ±5 minutes → ``InvalidSignatureException``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from enclave_kms.errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)
from enclave_kms.server._credentials import Credential, CredentialSet
from enclave_kms.server._sigv4_botocore import (
    UNSIGNABLE,
    HeaderMap,
    HeadersToSign,
    ReceivedRequestSigner,
    header_map,
)

__all__ = [
    "AuthenticatedCaller",
    "HeaderMap",
    "SigV4Verifier",
    "UnsafeAcceptAnySigV4Verifier",
    "header_map",
]

_LOG = logging.getLogger("enclave_kms.server.auth")

_ALGORITHM = "AWS4-HMAC-SHA256"
_AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_AMZ_DATE_RE = re.compile(r"^\d{8}T\d{6}Z$")
_SIGNATURE_RE = re.compile(r"^[0-9a-f]{64}$")
_SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
_INVALID_TOKEN = "The security token included in the request is invalid."  # noqa: S105 (a message)


@dataclass(frozen=True)
class AuthenticatedCaller:
    """Who signed a request: the result of a successful verification.

    Attributes:
        access_key_id: the access key the request was signed with.
        principal_arn: the IAM principal the key stands for.
        account_id: that principal's account.
    """

    access_key_id: str
    principal_arn: str
    account_id: str


class _ParsedAuthorization(NamedTuple):  # immutable; cheaper to build than a frozen dataclass
    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def _parse_authorization(value: str) -> _ParsedAuthorization:
    """Split ``AWS4-HMAC-SHA256 Credential=.., SignedHeaders=.., Signature=..``."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != _ALGORITHM:
        raise IncompleteSignatureException(
            f"Authorization header requires '{_ALGORITHM}' as its algorithm."
        )
    parts: dict[str, str] = {}
    for item in rest.split(","):
        name, sep, val = item.strip().partition("=")
        if sep:
            parts[name.strip()] = val.strip()
    credential = parts.get("Credential")
    signature = parts.get("Signature")
    signed_list = parts.get("SignedHeaders")
    if not (credential and signature and signed_list):
        missing = [
            f"Authorization header requires '{name}' parameter."
            for name in ("Credential", "Signature", "SignedHeaders")
            if not parts.get(name)
        ]
        raise IncompleteSignatureException(" ".join(missing))
    scope = credential.split("/")
    # Credential = AKID/yyyymmdd/region/service/aws4_request (the key id has no '/').
    if len(scope) != 5 or not all(scope):
        raise IncompleteSignatureException(
            "Credential should have the form <key>/<date>/<region>/<service>/aws4_request."
        )
    signed = tuple(signed_list.split(";"))
    if any(h != h.lower() or not h for h in signed):
        raise IncompleteSignatureException("SignedHeaders must be lower-case, ';'-separated.")
    if "host" not in signed or "x-amz-date" not in signed:
        raise IncompleteSignatureException(
            "Signed headers must include 'host' and 'x-amz-date' (with an X-Amz-Date header)."
        )
    return _ParsedAuthorization(
        access_key_id=scope[0],
        date=scope[1],
        region=scope[2],
        service=scope[3],
        signed_headers=signed,
        signature=signature,
    )


def _first(headers: HeaderMap, name: str) -> str | None:
    values = headers.get(name)
    return values[0] if values else None


class SigV4Verifier:
    """Verifies SigV4 ``Authorization`` headers against a set of access keys.

    Args:
        credentials: the accepted access keys.
        region: the region requests must be scoped to.
        service: the signing name (``kms``).
        clock: returns the current time (aware UTC); injectable for tests.
        max_skew: how far the request's ``X-Amz-Date`` may be from the clock (AWS: 5 minutes).
    """

    def __init__(
        self,
        credentials: CredentialSet,
        *,
        region: str,
        service: str = "kms",
        clock: Callable[[], datetime] | None = None,
        max_skew: timedelta = timedelta(minutes=5),
    ) -> None:
        self._credentials = credentials
        self._region = region
        self._service = service
        self._clock = clock or (lambda: datetime.now(UTC))
        self._max_skew = max_skew
        self._key_cache: dict[tuple[str, str, str, str], bytes] = {}
        # Region and service are checked against these before signing, so one signer fits all;
        # its credentials are never used (the signing key comes from _signing_key).
        self._signer = ReceivedRequestSigner(Credentials("", ""), service, region)

    def verify(
        self,
        *,
        method: str,
        scheme: str,
        path: str,
        query: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
    ) -> AuthenticatedCaller:
        """Check a request's signature and return who signed it.

        Args:
            method: the HTTP method as received.
            scheme: ``http`` or ``https`` (only used to rebuild the URL).
            path: the raw request path (percent-encoded, as received).
            query: the raw query string, without ``?``.
            headers: every received header as (name, value) pairs, duplicates kept.
            body: the full request body.

        Raises:
            MissingAuthenticationTokenException: no ``Authorization`` header.
            IncompleteSignatureException: the header or ``X-Amz-Date`` is malformed or missing.
            UnrecognizedClientException: the access key or session token is not known.
            InvalidSignatureException: the signature, scope or time does not match.
        """
        return self.verify_indexed(
            method=method,
            scheme=scheme,
            path=path,
            query=query,
            headers=header_map(headers),
            body=body,
        )

    def verify_indexed(
        self, *, method: str, scheme: str, path: str, query: str, headers: HeaderMap, body: bytes
    ) -> AuthenticatedCaller:
        """:meth:`verify` for headers already indexed by :func:`header_map`.

        Raises:
            MissingAuthenticationTokenException: no ``Authorization`` header.
            IncompleteSignatureException: the header or ``X-Amz-Date`` is malformed or missing.
            UnrecognizedClientException: the access key or session token is not known.
            InvalidSignatureException: the signature, scope or time does not match.
        """
        auth, amz_date = self._parse_common(headers)
        credential = self._credentials.get(auth.access_key_id)
        if credential is None:
            raise UnrecognizedClientException(_INVALID_TOKEN)
        self._check_session_token(credential, headers)
        expected = self._expected_signature(
            credential, auth, amz_date, method, scheme, path, query, headers, body
        )
        # Constant-time comparison: a byte-by-byte compare would leak the matching prefix.
        if not hmac.compare_digest(expected.encode("ascii"), auth.signature.encode("ascii")):
            raise InvalidSignatureException(_SIGNATURE_MISMATCH)
        return AuthenticatedCaller(
            access_key_id=credential.access_key_id,
            principal_arn=credential.principal_arn,
            account_id=credential.account_id,
        )

    # -- steps -----------------------------------------------------------------------------

    def _parse_common(self, headers: HeaderMap) -> tuple[_ParsedAuthorization, str]:
        """Parse the header, check the date window and the credential scope."""
        raw = _first(headers, "authorization")
        if raw is None:
            raise MissingAuthenticationTokenException("Missing Authentication Token")
        auth = _parse_authorization(raw)
        amz_date = _first(headers, "x-amz-date")
        if amz_date is None or not _AMZ_DATE_RE.match(amz_date.strip()):
            raise IncompleteSignatureException(
                "Authorization header requires existence of a valid 'X-Amz-Date' header."
            )
        amz_date = amz_date.strip()
        # The operation must be covered by the signature: unsigned, X-Amz-Target could be
        # swapped on a captured request (DescribeKey -> ScheduleKeyDeletion with the same
        # body) and replayed within the time window. botocore, the AWS CLI and kmstool sign it.
        targets = headers.get("x-amz-target", ())
        if len(targets) > 1:
            raise IncompleteSignatureException("The request has more than one X-Amz-Target header.")
        if targets and "x-amz-target" not in auth.signed_headers:
            raise IncompleteSignatureException("Signed headers must include 'x-amz-target'.")
        self._check_time(amz_date)
        if auth.date != amz_date[:8]:
            raise InvalidSignatureException(
                f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of "
                f"date from HTTP: '{auth.date}' != '{amz_date[:8]}', from '{amz_date}'."
            )
        if auth.service != self._service:
            raise InvalidSignatureException(
                f"Credential should be scoped to correct service: '{self._service}'."
            )
        if auth.region != self._region:
            raise InvalidSignatureException(
                f"Credential should be scoped to a valid region, not '{auth.region}'."
            )
        if not _SIGNATURE_RE.match(auth.signature):
            raise InvalidSignatureException(_SIGNATURE_MISMATCH)
        return auth, amz_date

    def _check_time(self, amz_date: str) -> None:
        try:
            # Sliced by hand: strptime costs more than the rest of the time check.
            when = datetime(
                int(amz_date[0:4]), int(amz_date[4:6]), int(amz_date[6:8]),
                int(amz_date[9:11]), int(amz_date[11:13]), int(amz_date[13:15]), tzinfo=UTC,
            )  # fmt: skip
        except ValueError:
            raise IncompleteSignatureException(
                f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'."
            ) from None
        now = self._clock()
        fmt = _AMZ_DATE_FORMAT
        # AWS's wording, e.g. "Signature expired: 20130524T000000Z is now earlier than
        # 20130524T000500Z (20130524T001000Z - 5 min.)"; a replay outside the window fails here.
        minutes = int(self._max_skew.total_seconds() // 60)
        if when < now - self._max_skew:
            raise InvalidSignatureException(
                f"Signature expired: {amz_date} is now earlier than "
                f"{(now - self._max_skew).strftime(fmt)} ({now.strftime(fmt)} - {minutes} min.)"
            )
        if when > now + self._max_skew:
            raise InvalidSignatureException(
                f"Signature not yet current: {amz_date} is still later than "
                f"{(now + self._max_skew).strftime(fmt)} ({now.strftime(fmt)} + {minutes} min.)"
            )

    @staticmethod
    def _check_session_token(credential: Credential, headers: HeaderMap) -> None:
        sent = _first(headers, "x-amz-security-token")
        configured = credential.session_token
        if configured is None and sent is None:
            return
        if configured is None or sent is None:
            raise UnrecognizedClientException(_INVALID_TOKEN)
        if not hmac.compare_digest(configured.encode(), sent.strip().encode()):
            raise UnrecognizedClientException(_INVALID_TOKEN)

    def _expected_signature(
        self,
        credential: Credential,
        auth: _ParsedAuthorization,
        amz_date: str,
        method: str,
        scheme: str,
        path: str,
        query: str,
        headers: HeaderMap,
        body: bytes,
    ) -> str:
        signed: dict[str, list[str]] = {}
        for name in auth.signed_headers:
            values = headers.get(name)
            if values is None:
                # A header listed as signed but not sent cannot be canonicalised as the client
                # did.
                raise InvalidSignatureException(_SIGNATURE_MISMATCH)
            if name not in UNSIGNABLE:  # what SigV4Auth.headers_to_sign leaves out
                signed[name] = values
        body_sha = hashlib.sha256(body).hexdigest()
        # SigV4Auth.canonical_request uses a signed X-Amz-Content-SHA256 (its first value, as
        # sent) instead of hashing the body; payload() hands botocore that same string.
        content_sha = _first(signed, "x-amz-content-sha256")
        if content_sha is not None and not hmac.compare_digest(
            content_sha.strip().encode(), body_sha.encode()
        ):
            # botocore trusts a signed X-Amz-Content-SHA256 instead of hashing the body; make
            # sure it really is the body's hash, or a signature could cover a different body.
            raise InvalidSignatureException(_SIGNATURE_MISMATCH)
        host = _first(signed, "host") or ""
        url = f"{scheme}://{host}{path}" + (f"?{query}" if query else "")
        # No headers on the request itself: botocore reads them through headers_to_sign (and
        # would only look there for X-Amz-Content-SHA256, handled by payload() above).
        request = AWSRequest(method=method, url=url)
        request.context["timestamp"] = amz_date
        request.context["payload_hash"] = body_sha if content_sha is None else content_sha
        request.context["headers_to_sign"] = HeadersToSign(signed)
        signer = self._signer
        string_to_sign = signer.string_to_sign(request, signer.canonical_request(request))
        # The final HMAC uses the derived signing key (the same four-step derivation as
        # SigV4Auth.signature); caching it per key and day avoids four HMACs per request.
        key = self._signing_key(credential, auth.date, auth.region, auth.service)
        return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()

    def _signing_key(self, credential: Credential, date: str, region: str, service: str) -> bytes:
        cache_key = (credential.access_key_id, date, region, service)
        key = self._key_cache.get(cache_key)
        if key is None:
            key = ("AWS4" + credential.secret_access_key).encode("utf-8")
            for part in (date, region, service, "aws4_request"):
                key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
            if len(self._key_cache) > 1024:  # bounded: keys x days seen
                self._key_cache.clear()
            self._key_cache[cache_key] = key
        return key


class UnsafeAcceptAnySigV4Verifier(SigV4Verifier):
    """UNSAFE: accepts any well-formed SigV4 header without checking the signature.

    For throwaway test runs only (``--insecure-accept-any-credentials``). The caller is the
    account root whatever access key is named. The header must still parse and the date must
    still be inside the window, so clients that sign at all keep working.
    """

    def __init__(
        self,
        *,
        region: str,
        account_id: str,
        service: str = "kms",
        clock: Callable[[], datetime] | None = None,
        max_skew: timedelta = timedelta(minutes=5),
    ) -> None:
        super().__init__(
            CredentialSet(), region=region, service=service, clock=clock, max_skew=max_skew
        )
        self._root = f"arn:aws:iam::{account_id}:root"
        self._account_id = account_id

    def verify_indexed(
        self, *, method: str, scheme: str, path: str, query: str, headers: HeaderMap, body: bytes
    ) -> AuthenticatedCaller:
        """Parse the header and check the date only; never checks the signature.

        Raises:
            MissingAuthenticationTokenException: no ``Authorization`` header.
            IncompleteSignatureException: the header or ``X-Amz-Date`` is malformed.
            InvalidSignatureException: the date or scope is wrong.
        """
        auth, _ = self._parse_common(headers)
        return AuthenticatedCaller(auth.access_key_id, self._root, self._account_id)
