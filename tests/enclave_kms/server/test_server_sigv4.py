"""SigV4 verification: requests signed by botocore pass; every kind of tampering fails by name."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st
from kms_server_helpers import ACCESS_KEY, ACCOUNT, REGION, SECRET_KEY, sign

from enclave_kms.errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)
from enclave_kms.server._credentials import Credential, CredentialSet
from enclave_kms.server._sigv4 import SigV4Verifier, UnsafeAcceptAnySigV4Verifier

TEMP_KEY = "ASIAENCLAVEKMSTEMP01"
TEMP_SECRET = "temporary/secret/for/tests/only/xxxxxxxx"
TEMP_TOKEN = "FwoGZXIvYXdzEXAMPLEsessiontoken"

CREDS = CredentialSet(
    [
        Credential(ACCESS_KEY, SECRET_KEY, f"arn:aws:iam::{ACCOUNT}:user/alice", ACCOUNT),
        Credential(
            TEMP_KEY, TEMP_SECRET, f"arn:aws:iam::{ACCOUNT}:role/enclave", ACCOUNT, TEMP_TOKEN
        ),
    ]
)


def verifier(offset: timedelta = timedelta(0)) -> SigV4Verifier:
    return SigV4Verifier(CREDS, region=REGION, clock=lambda: datetime.now(UTC) + offset)


def check(v: SigV4Verifier, headers: list[tuple[str, str]], body: bytes) -> object:
    return v.verify(method="POST", scheme="http", path="/", query="", headers=headers, body=body)


def replace(headers: list[tuple[str, str]], name: str, value: str | None) -> list[tuple[str, str]]:
    out = [(k, v) for k, v in headers if k.lower() != name.lower()]
    if value is not None:
        out.append((name, value))
    return out


def auth_of(headers: list[tuple[str, str]]) -> str:
    return next(v for k, v in headers if k.lower() == "authorization")


def test_botocore_signed_request_verifies_to_its_principal() -> None:
    headers, body = sign("GenerateDataKey", b'{"KeyId":"alias/x"}')
    who = check(verifier(), headers, body)
    assert who.principal_arn == f"arn:aws:iam::{ACCOUNT}:user/alice"  # type: ignore[attr-defined]
    assert who.access_key_id == ACCESS_KEY  # type: ignore[attr-defined]


def test_missing_authorization_is_missing_authentication_token() -> None:
    headers, body = sign("Decrypt", b"{}")
    with pytest.raises(MissingAuthenticationTokenException):
        check(verifier(), replace(headers, "Authorization", None), body)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda a: "Bearer abc",
        lambda a: a.replace("Signature=", "Sig="),
        lambda a: a.replace("Credential=", "Cred="),
        lambda a: a.replace("SignedHeaders=", "Headers="),
        lambda a: a.replace("SignedHeaders=content-type;host;", "SignedHeaders=content-type;"),
        lambda a: a.replace(";x-amz-date", ""),
        lambda a: a.replace("/us-east-1/kms/aws4_request", "/us-east-1/kms"),
    ],
    ids=[
        "scheme",
        "no-signature",
        "no-credential",
        "no-signedheaders",
        "no-host",
        "no-x-amz-date-signed",
        "short-scope",
    ],
)
def test_malformed_authorization_is_incomplete_signature(mangle: object) -> None:
    headers, body = sign("Decrypt", b"{}")
    bad = replace(headers, "Authorization", mangle(auth_of(headers)))  # type: ignore[operator]
    with pytest.raises(IncompleteSignatureException):
        check(verifier(), bad, body)


def test_missing_x_amz_date_is_incomplete_signature() -> None:
    headers, body = sign("Decrypt", b"{}")
    with pytest.raises(IncompleteSignatureException):
        check(verifier(), replace(headers, "X-Amz-Date", None), body)


def test_unknown_access_key_is_unrecognized_client() -> None:
    headers, body = sign("Decrypt", b"{}", access_key="AKIAUNKNOWNUNKNOWN00")
    with pytest.raises(UnrecognizedClientException, match="security token included"):
        check(verifier(), headers, body)


def test_wrong_secret_is_invalid_signature() -> None:
    headers, body = sign("Decrypt", b"{}", secret_key="not-the-secret")
    with pytest.raises(InvalidSignatureException, match="does not match"):
        check(verifier(), headers, body)


def test_tampered_body_and_target_fail() -> None:
    headers, body = sign("Decrypt", b'{"KeyId":"a"}')
    with pytest.raises(InvalidSignatureException):
        check(verifier(), headers, b'{"KeyId":"b"}')
    with pytest.raises(InvalidSignatureException):
        check(verifier(), replace(headers, "X-Amz-Target", "TrentService.Encrypt"), body)


def test_an_unsigned_or_duplicated_target_is_incomplete_signature() -> None:
    # Signed without X-Amz-Target, which is then added: the operation could be swapped on a
    # captured request and replayed, so the target must be covered by the signature.
    request = AWSRequest(
        method="POST",
        url="http://127.0.0.1:4599/",
        data=b'{"KeyId":"a"}',
        headers={"Content-Type": "application/x-amz-json-1.1", "Host": "127.0.0.1:4599"},
    )
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "kms", REGION).add_auth(request)
    unsigned = [*request.prepare().headers.items(), ("X-Amz-Target", "TrentService.DescribeKey")]
    with pytest.raises(IncompleteSignatureException, match="x-amz-target"):
        check(verifier(), unsigned, b'{"KeyId":"a"}')
    headers, body = sign("DescribeKey", b'{"KeyId":"a"}')
    doubled = [*headers, ("X-Amz-Target", "TrentService.ScheduleKeyDeletion")]
    with pytest.raises(IncompleteSignatureException, match="more than one X-Amz-Target"):
        check(verifier(), doubled, body)


def test_expired_and_future_dates_are_rejected_with_aws_wording() -> None:
    headers, body = sign("Decrypt", b"{}")
    with pytest.raises(InvalidSignatureException, match=r"^Signature expired: "):
        check(verifier(timedelta(minutes=6)), headers, body)
    with pytest.raises(InvalidSignatureException, match=r"^Signature not yet current: "):
        check(verifier(timedelta(minutes=-6)), headers, body)
    # Inside the window (4 minutes off either way) the same request still verifies.
    check(verifier(timedelta(minutes=4)), headers, body)
    check(verifier(timedelta(minutes=-4)), headers, body)


@pytest.mark.parametrize(("region", "service"), [("eu-west-1", "kms"), (REGION, "s3")])
def test_wrong_scope_is_invalid_signature(region: str, service: str) -> None:
    headers, body = sign("Decrypt", b"{}", region=region, service=service)
    with pytest.raises(InvalidSignatureException, match="scoped"):
        check(verifier(), headers, body)


def test_session_token_must_match_the_configured_one() -> None:
    good, body = sign(
        "Decrypt", b"{}", access_key=TEMP_KEY, secret_key=TEMP_SECRET, token=TEMP_TOKEN
    )
    assert check(verifier(), good, body).principal_arn.endswith(":role/enclave")  # type: ignore[attr-defined]
    wrong, body = sign(
        "Decrypt", b"{}", access_key=TEMP_KEY, secret_key=TEMP_SECRET, token=TEMP_TOKEN + "x"
    )
    with pytest.raises(UnrecognizedClientException):
        check(verifier(), wrong, body)
    missing, body = sign("Decrypt", b"{}", access_key=TEMP_KEY, secret_key=TEMP_SECRET)
    with pytest.raises(UnrecognizedClientException):
        check(verifier(), missing, body)
    # A long-term key presented with a token is not a valid temporary credential either.
    stray, body = sign("Decrypt", b"{}", token="whatever")
    with pytest.raises(UnrecognizedClientException):
        check(verifier(), stray, body)


def test_signed_content_sha256_must_be_the_body_hash() -> None:
    headers, body = sign("Decrypt", b'{"KeyId":"a"}')
    # A client-declared payload hash that is not the body's would let a signature cover another
    # body; the verifier must not trust it.
    forged = replace(headers, "X-Amz-Content-SHA256", "0" * 64)
    forged = replace(
        forged,
        "Authorization",
        auth_of(headers).replace("host;x-amz-date", "host;x-amz-content-sha256;x-amz-date"),
    )
    with pytest.raises(InvalidSignatureException):
        check(verifier(), forged, body)


def test_unsafe_verifier_skips_the_signature_but_not_the_format() -> None:
    unsafe = UnsafeAcceptAnySigV4Verifier(region=REGION, account_id=ACCOUNT)
    headers, body = sign("Decrypt", b"{}", access_key="AKIAANYTHINGATALL000", secret_key="x")
    assert check(unsafe, headers, body).principal_arn == f"arn:aws:iam::{ACCOUNT}:root"  # type: ignore[attr-defined]
    with pytest.raises(MissingAuthenticationTokenException):
        check(unsafe, replace(headers, "Authorization", None), body)


def test_secrets_stay_out_of_reprs() -> None:
    text = repr(CREDS) + repr(next(iter(CREDS)))
    assert SECRET_KEY not in text
    assert TEMP_SECRET not in text


@settings(max_examples=60, deadline=None)
@given(body=st.binary(max_size=300), flip=st.integers(min_value=0))
def test_any_body_verifies_and_any_flipped_byte_fails(body: bytes, flip: int) -> None:
    headers, _ = sign("GenerateRandom", body)
    check(verifier(), headers, body)
    if body:
        i = flip % len(body)
        tampered = body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1 :]
        with pytest.raises(InvalidSignatureException):
            check(verifier(), headers, tampered)


_HEADER_TEXT = st.text(
    alphabet=st.characters(codec="latin-1", exclude_categories=("Cs",)), max_size=300
)


@settings(max_examples=200, deadline=None)
@given(
    authorization=st.one_of(
        _HEADER_TEXT,
        # Mutations of a real header reach deeper than random text.
        st.builds(
            lambda cut, junk: (
                (
                    "AWS4-HMAC-SHA256 Credential="
                    + ACCESS_KEY
                    + "/20260101/"
                    + REGION
                    + "/kms/aws4_request, SignedHeaders=host;x-amz-date, Signature="
                    + "0" * 64
                )[:cut]
                + junk
            ),
            st.integers(min_value=0, max_value=200),
            _HEADER_TEXT,
        ),
    ),
    amz_date=st.one_of(st.none(), _HEADER_TEXT, st.just("20260101T000000Z")),
    extra=st.lists(st.tuples(_HEADER_TEXT, _HEADER_TEXT), max_size=4),
    body=st.binary(max_size=64),
)
def test_any_authorization_header_ends_in_a_documented_error(
    authorization: str,
    amz_date: str | None,
    extra: list[tuple[str, str]],
    body: bytes,
) -> None:
    # The SigV4 parser reads untrusted bytes before anything else: whatever arrives, the
    # outcome is a KmsError (answered on the wire) or an authenticated caller, never a crash.
    from enclave_kms.errors import KmsError

    headers = [("Host", "127.0.0.1:4599"), ("Authorization", authorization), *extra]
    if amz_date is not None:
        headers.append(("X-Amz-Date", amz_date))
    with contextlib.suppress(KmsError):  # any other exception type fails the test
        check(verifier(), headers, body)
