"""The verifier's expected signature is botocore's, byte for byte, for any request shape.

The verifier feeds botocore's canonicaliser a request built cheaply from the received headers;
these tests sign random requests with botocore's unmodified ``SigV4Auth.add_auth`` and check
that the verifier accepts exactly that signature (and rejects it once a signed value changes).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from botocore.auth import SIGNED_HEADERS_BLACKLIST, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st
from kms_server_helpers import ACCESS_KEY, ACCOUNT, REGION, SECRET_KEY

from enclave_kms.errors import InvalidSignatureException
from enclave_kms.server._credentials import Credential, CredentialSet
from enclave_kms.server._sigv4 import SigV4Verifier, header_map

TOKEN_KEY = "ASIAENCLAVEKMSTOKEN1"
TOKEN_SECRET = "token/secret/for/tests/only/xxxxxxxxxxxx"
TOKEN = "FwoGZXIvYXdzEXAMPLEtoken"
CREDS = CredentialSet(
    [
        Credential(ACCESS_KEY, SECRET_KEY, f"arn:aws:iam::{ACCOUNT}:user/a", ACCOUNT),
        Credential(TOKEN_KEY, TOKEN_SECRET, f"arn:aws:iam::{ACCOUNT}:role/r", ACCOUNT, TOKEN),
    ]
)
# Names the verifier treats specially (required, single, or checked against the body/config),
# or that botocore rewrites when signing ("Date").
_RESERVED = {
    "authorization",
    "date",
    "host",
    "x-amz-content-sha256",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-target",
}

_NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=10).filter(
    lambda n: n not in _RESERVED and n not in SIGNED_HEADERS_BLACKLIST
)
# Header values as HTTP carries them (latin-1, no CR/LF/NUL), with runs and edges of whitespace
# (including \xa0, which str.split treats as whitespace) that SigV4's Trimall collapses.
_VALUES = st.text(alphabet=st.sampled_from([*"abcXYZ019-_.:/;,=\"'() \t\xa0éü\x7f"]), max_size=20)
_PATH_CHARS = "abcXYZ019-_.~!$&'()*+,;=:@%"
_SEGMENTS = st.one_of(
    st.text(alphabet=_PATH_CHARS, max_size=8),
    st.sampled_from([".", "..", "%2F", "%20", "a%2fb", "%E2%82%AC", ""]),
)
_QUERY_PART = st.text(alphabet="abcXYZ019-_.~%+*=/", max_size=8)


@st.composite
def _mixed_case(draw: st.DrawFn, name: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    return "".join(c.upper() if f else c for c, f in zip(name, flips, strict=True))


def _signed(
    draw: st.DrawFn,
) -> tuple[AWSRequest, list[tuple[str, str]], bytes, str, str, str]:
    host = draw(st.sampled_from(["127.0.0.1:4599", "kms.us-east-1.amazonaws.com", "localhost"]))
    path = "/" + "/".join(draw(st.lists(_SEGMENTS, max_size=4)))
    pairs = draw(st.lists(st.tuples(_QUERY_PART, _QUERY_PART, st.booleans()), max_size=3))
    query = "&".join(f"{k}={v}" if eq else k for k, v, eq in pairs)
    method = draw(st.sampled_from(["POST", "GET", "PUT", "post"]))
    body = draw(st.binary(max_size=64))
    request = AWSRequest(method=method, url=f"http://{host}{path}" + (f"?{query}" if query else ""))
    request.data = body
    request.headers[draw(_mixed_case("host"))] = host
    request.headers["X-Amz-Target"] = "TrentService.GenerateRandom"
    for name, value in draw(st.lists(st.tuples(_NAMES, _VALUES), max_size=5)):
        request.headers[draw(_mixed_case(name))] = value  # HTTPHeaders appends duplicates
        if draw(st.booleans()):  # the same name again, in another case
            request.headers[draw(_mixed_case(name))] = draw(_VALUES)
    if draw(st.booleans()):  # botocore leaves these out of what it signs
        request.headers["User-Agent"] = draw(_VALUES)
    if draw(st.booleans()):
        request.headers["X-Amz-Content-SHA256"] = hashlib.sha256(body).hexdigest()
    with_token = draw(st.booleans())
    credentials = (
        Credentials(TOKEN_KEY, TOKEN_SECRET, TOKEN)
        if with_token
        else Credentials(ACCESS_KEY, SECRET_KEY)
    )
    SigV4Auth(credentials, "kms", REGION).add_auth(request)
    received = list(request.headers.items())
    for name, value in draw(st.lists(st.tuples(_NAMES, _VALUES), max_size=3)):
        # Unsigned extras a proxy or the HTTP stack could add, anywhere in the header block.
        where = draw(st.integers(min_value=0, max_value=len(received)))
        received.insert(where, (f"x-unsigned-{name}", value))
    split = urlsplit(request.url)
    return request, received, body, method, split.path, split.query


def _verifier(request: AWSRequest) -> SigV4Verifier:
    when = datetime.strptime(request.context["timestamp"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return SigV4Verifier(CREDS, region=REGION, clock=lambda: when)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_expected_signature_equals_botocores_add_auth(data: st.DataObject) -> None:
    request, received, body, method, path, query = _signed(data.draw)
    verifier = _verifier(request)
    caller = verifier.verify(
        method=method, scheme="http", path=path, query=query, headers=received, body=body
    )
    assert caller.account_id == ACCOUNT
    # The same comparison made explicit: what the verifier computes is what botocore sent.
    headers = header_map(received)
    auth, amz_date = verifier._parse_common(headers)
    credential = CREDS.get(auth.access_key_id)
    assert credential is not None
    expected = verifier._expected_signature(
        credential, auth, amz_date, method, "http", path, query, headers, body
    )
    assert expected == auth.signature
    # And a change to any signed header value is a different signature.
    signed = [i for i, (k, _) in enumerate(received) if k.lower() in auth.signed_headers]
    i = data.draw(st.sampled_from(signed))
    if received[i][0].lower() in ("x-amz-date", "x-amz-security-token", "x-amz-content-sha256"):
        return  # checked before the signature, with their own errors (test_server_sigv4)
    tampered = list(received)
    tampered[i] = (received[i][0], received[i][1] + "x")
    with pytest.raises(InvalidSignatureException):
        verifier.verify(
            method=method, scheme="http", path=path, query=query, headers=tampered, body=body
        )


@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_headers_given_as_pairs_or_indexed_verify_alike(data: st.DataObject) -> None:
    request, received, body, method, path, query = _signed(data.draw)
    verifier = _verifier(request)
    pairs = verifier.verify(
        method=method, scheme="http", path=path, query=query, headers=received, body=body
    )
    indexed = verifier.verify_indexed(
        method=method, scheme="http", path=path, query=query, headers=header_map(received),
        body=body,
    )  # fmt: skip
    assert pairs == indexed
