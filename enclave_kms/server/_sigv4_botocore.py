"""botocore's SigV4 canonicaliser, fed a request that was received rather than built.

``SigV4Auth`` is written for outgoing requests: it copies every header into an
``email.message.Message`` one ``__setitem__`` at a time, scans all of them again per name, and
hashes the body through a full request preparation. Verifying a received request needs the same
canonical request and string to sign, so only botocore's *inputs* are replaced here with
structures built once per request; every formatting step stays botocore's own.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from botocore.auth import SIGNED_HEADERS_BLACKLIST, SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders

__all__ = ["UNSIGNABLE", "HeaderMap", "HeadersToSign", "ReceivedRequestSigner", "header_map"]

UNSIGNABLE = frozenset(SIGNED_HEADERS_BLACKLIST)  # botocore drops these from what it signs

HeaderMap = Mapping[str, list[str]]
"""Received headers by lower-case name, each with its values in arrival order."""


def header_map(headers: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Index received headers by lower-case name in one pass, keeping duplicates in order."""
    out: dict[str, list[str]] = {}
    for name, value in headers:
        key = name.lower()
        values = out.get(key)
        if values is None:
            out[key] = [value]
        else:
            values.append(value)
    return out


class HeadersToSign(HTTPHeaders):
    """botocore's header structure for the signed headers, filled in one go.

    ``SigV4Auth.headers_to_sign`` fills an ``HTTPHeaders`` (an ``email.message.Message``) with
    one ``__setitem__`` per header, and ``canonical_headers`` calls ``get_all`` per name, each a
    scan of every header: most of the verification's cost. Why the canonical text is the same
    bytes: under the ``compat32`` policy ``__setitem__`` stores ``(name, value)`` unchanged with
    no count limit, so ``_headers`` holds what it would have; iterating yields the same names
    (``canonical_headers``/``signed_headers`` take a ``set`` of them, so one per name suffices);
    ``get_all`` returns a name's values in arrival order, and ``header_fetch_parse`` would only
    have rewritten values carrying surrogate escapes, which latin-1-decoded header bytes never
    do. The property test in ``test_server_sigv4_botocore`` checks this against ``add_auth``.
    """

    def __init__(self, by_name: dict[str, list[str]]) -> None:
        super().__init__()
        self._by_name = by_name
        self._headers = [(n, v) for n, values in by_name.items() for v in values]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._by_name

    def get_all(self, name: str, failobj: object = None) -> object:  # type: ignore[override]
        return self._by_name.get(name.lower(), failobj)


class ReceivedRequestSigner(SigV4Auth):
    """botocore's SigV4 canonicaliser, fed what the verifier already has.

    Only the inputs are overridden; every formatting step (``canonical_request`` and what it
    calls, ``string_to_sign``) is botocore's:

    - ``payload`` returns the hash put in ``request.context``: ``SigV4Auth.payload`` would hash
      ``request.body``, which makes botocore prepare a whole outgoing request per call.
    - ``headers_to_sign`` returns the signed headers already selected by the verifier (see
      :class:`HeadersToSign`), with botocore's own exclusion list applied.

    It holds no secret (the final HMAC uses the cached signing key), so one instance per
    verifier serves every request.
    """

    def payload(self, request: AWSRequest) -> str:
        return str(request.context["payload_hash"])

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        headers: HTTPHeaders = request.context["headers_to_sign"]
        return headers
