"""CBOR encoding of NSM requests and responses, exactly as the Nitro Secure Module speaks it.

The NSM API (aws-nitro-enclaves-nsm-api ``src/api/mod.rs``) serialises its ``Request`` and
``Response`` enums with serde's externally-tagged representation:

* a unit variant is a bare text string (``"DescribeNSM"``, ``"LockPCR"``);
* a struct variant is a one-entry map ``{"<Name>": {<fields in declaration order>}}``;
* every failure is ``{"Error": "<ErrorCode name>"}``.

This module is shared by the client (:mod:`attestation.nsm.client`) and the simulator
(:mod:`attestation.testing.nsm`), so both sides agree on the bytes.
"""

from __future__ import annotations

import enum
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cbor2

from attestation.errors import AttestationError

__all__ = [
    "MAX_PCRS",
    "PCR_LENGTH",
    "REQUEST_MAX_BYTES",
    "RESPONSE_MAX_BYTES",
    "AttestationRequest",
    "DescribeNsm",
    "DescribePcr",
    "ErrorCode",
    "ExtendPcr",
    "GetRandom",
    "LockPcr",
    "LockPcrs",
    "NsmError",
    "Request",
    "decode_request",
    "decode_response",
    "encode_error",
    "encode_request",
    "encode_response",
    "strict_loads",
]

# src/driver/mod.rs: NSM_REQUEST_MAX_SIZE = 0x1000, NSM_RESPONSE_MAX_SIZE = 0x3000.
REQUEST_MAX_BYTES = 0x1000
RESPONSE_MAX_BYTES = 0x3000
# nsm-check asserts max_pcrs == 32; SHA-384 PCRs are 48 bytes.
MAX_PCRS = 32
PCR_LENGTH = 48
_U16_MAX = 0xFFFF


class ErrorCode(enum.IntEnum):
    """The NSM ``ErrorCode`` enum; the values are the C ABI numbers (Rust declaration order)."""

    Success = 0
    InvalidArgument = 1
    InvalidIndex = 2
    InvalidResponse = 3
    ReadOnlyIndex = 4
    InvalidOperation = 5
    BufferTooSmall = 6
    InputTooLarge = 7
    InternalError = 8


class NsmError(AttestationError):
    """The NSM (or the client library in front of it) reported an error.

    Attributes:
        code: the NSM error code; ``code.name`` is the wire name (``"ReadOnlyIndex"``, ...).
    """

    def __init__(self, code: ErrorCode, detail: str = "") -> None:
        super().__init__(f"NSM error {code.name}" + (f": {detail}" if detail else ""))
        self.code = code

    @property
    def error_name(self) -> str:
        """The error code's wire name, as in ``{"Error": "<name>"}``."""
        return self.code.name


@dataclass(frozen=True)
class DescribePcr:
    """``{"DescribePCR": {"index": u16}}``."""

    index: int


@dataclass(frozen=True)
class ExtendPcr:
    """``{"ExtendPCR": {"index": u16, "data": bstr}}``."""

    index: int
    data: bytes


@dataclass(frozen=True)
class LockPcr:
    """``{"LockPCR": {"index": u16}}``."""

    index: int


@dataclass(frozen=True)
class LockPcrs:
    """``{"LockPCRs": {"range": u16}}``: lock PCRs ``[0, range)``."""

    range: int


@dataclass(frozen=True)
class DescribeNsm:
    """``"DescribeNSM"`` (a unit variant: a bare string on the wire)."""


@dataclass(frozen=True)
class GetRandom:
    """``"GetRandom"`` (a unit variant)."""


@dataclass(frozen=True, repr=False)
class AttestationRequest:
    """``{"Attestation": {"user_data": .., "nonce": .., "public_key": ..}}``, each bstr or null."""

    user_data: bytes | None = None
    nonce: bytes | None = None
    public_key: bytes | None = None

    def __repr__(self) -> str:
        # Lengths only: user_data may carry application secrets' commitments.
        def _len(v: bytes | None) -> str:
            return "None" if v is None else f"<{len(v)} bytes>"

        return (
            f"AttestationRequest(user_data={_len(self.user_data)}, nonce={_len(self.nonce)}, "
            f"public_key={_len(self.public_key)})"
        )


Request = (
    DescribePcr | ExtendPcr | LockPcr | LockPcrs | DescribeNsm | GetRandom | AttestationRequest
)


def strict_loads(raw: bytes) -> Any:
    """Decode exactly one CBOR item; trailing bytes are an error (``cbor2.loads`` ignores them).

    Raises:
        ValueError: the bytes are not exactly one well-formed CBOR item.
    """
    fp = io.BytesIO(raw)
    try:
        item = cbor2.CBORDecoder(fp).decode()
    # Untrusted bytes can make cbor2 raise more than CBORDecodeError (e.g. an unhashable map
    # key, a bad tag payload); every one of them means "not a valid message".
    except Exception as exc:
        raise ValueError(f"undecodable CBOR: {type(exc).__name__}") from exc
    if fp.tell() != len(raw):
        raise ValueError(f"{len(raw) - fp.tell()} trailing bytes after the CBOR item")
    return item


def encode_request(request: Request) -> bytes:
    """Encode a request the way nsm-api's serde does.

    Raises:
        NsmError: ``InvalidArgument`` if an index or range does not fit the wire type ``u16``.
    """
    body: Any
    if isinstance(request, DescribeNsm):
        body = "DescribeNSM"
    elif isinstance(request, GetRandom):
        body = "GetRandom"
    elif isinstance(request, DescribePcr):
        body = {"DescribePCR": {"index": _u16(request.index, "index")}}
    elif isinstance(request, ExtendPcr):
        body = {"ExtendPCR": {"index": _u16(request.index, "index"), "data": bytes(request.data)}}
    elif isinstance(request, LockPcr):
        body = {"LockPCR": {"index": _u16(request.index, "index")}}
    elif isinstance(request, LockPcrs):
        body = {"LockPCRs": {"range": _u16(request.range, "range")}}
    else:
        body = {
            "Attestation": {
                "user_data": _opt_bytes(request.user_data),
                "nonce": _opt_bytes(request.nonce),
                "public_key": _opt_bytes(request.public_key),
            }
        }
    return cbor2.dumps(body)


def decode_request(raw: bytes) -> Request:
    """Decode a request as the NSM does (the simulator's side of the wire).

    Raises:
        NsmError: ``InputTooLarge`` over 4096 bytes; ``InvalidOperation`` for anything that is not
            a known request (QEMU virtio-nsm answers the same); ``InvalidArgument`` for a known
            request whose fields have the wrong type.
    """
    if len(raw) > REQUEST_MAX_BYTES:
        raise NsmError(ErrorCode.InputTooLarge, f"request is {len(raw)} bytes")
    try:
        item = strict_loads(raw)
    except ValueError as exc:
        raise NsmError(ErrorCode.InvalidOperation, str(exc)) from exc
    if item == "DescribeNSM":
        return DescribeNsm()
    if item == "GetRandom":
        return GetRandom()
    if not (isinstance(item, Mapping) and len(item) == 1):
        raise NsmError(ErrorCode.InvalidOperation, "not a request")
    ((name, fields),) = item.items()
    if name not in ("DescribePCR", "ExtendPCR", "LockPCR", "LockPCRs", "Attestation"):
        raise NsmError(ErrorCode.InvalidOperation, "unknown request")
    if not isinstance(fields, Mapping):
        raise NsmError(ErrorCode.InvalidArgument, f"{name} fields are not a map")
    if name == "DescribePCR":
        return DescribePcr(_field_u16(fields, "index"))
    if name == "ExtendPCR":
        data = fields.get("data")
        if not isinstance(data, bytes):
            raise NsmError(ErrorCode.InvalidArgument, "ExtendPCR.data is not a byte string")
        return ExtendPcr(_field_u16(fields, "index"), data)
    if name == "LockPCR":
        return LockPcr(_field_u16(fields, "index"))
    if name == "LockPCRs":
        return LockPcrs(_field_u16(fields, "range"))
    return AttestationRequest(
        user_data=_field_opt_bytes(fields, "user_data"),
        nonce=_field_opt_bytes(fields, "nonce"),
        public_key=_field_opt_bytes(fields, "public_key"),
    )


def encode_response(name: str, fields: Mapping[str, Any] | None = None) -> bytes:
    """Encode a successful response: a bare string for unit variants, else ``{name: fields}``."""
    return cbor2.dumps(name if fields is None else {name: dict(fields)})


def encode_error(code: ErrorCode) -> bytes:
    """Encode ``{"Error": "<name>"}``."""
    return cbor2.dumps({"Error": code.name})


def decode_response(raw: bytes, expected: str, *, unit: bool = False) -> Mapping[str, Any]:
    """Decode a response to the request named ``expected``.

    Args:
        raw: the response bytes.
        expected: the variant name the request calls for (``"DescribePCR"``, ...).
        unit: whether the success variant is a unit variant (a bare string).

    Returns:
        The variant's fields (an empty mapping for a unit variant).

    Raises:
        NsmError: the NSM's own code for ``{"Error": ...}``; ``InternalError`` for undecodable
            bytes (as nsm-api's driver does); ``InvalidResponse`` when the response is of another
            type than the request (nsm-lib's rule).
    """
    try:
        item = strict_loads(raw)
    except ValueError as exc:
        raise NsmError(ErrorCode.InternalError, f"undecodable NSM response ({exc})") from exc
    if isinstance(item, Mapping) and len(item) == 1 and "Error" in item:
        name = item["Error"]
        code = ErrorCode.__members__.get(name) if isinstance(name, str) else None
        if code is None:
            raise NsmError(ErrorCode.InvalidResponse, "unknown error code in NSM response")
        raise NsmError(code)
    if unit:
        if item == expected:
            return {}
    elif isinstance(item, Mapping) and len(item) == 1 and expected in item:
        fields = item[expected]
        if isinstance(fields, Mapping):
            return fields
    raise NsmError(ErrorCode.InvalidResponse, f"response does not match the {expected} request")


def _u16(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _U16_MAX:
        raise NsmError(ErrorCode.InvalidArgument, f"{what} must be an integer in 0..65535")
    return value


def _opt_bytes(value: bytes | None) -> bytes | None:
    return None if value is None else bytes(value)


def _field_u16(fields: Mapping[Any, Any], key: str) -> int:
    value = fields.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _U16_MAX:
        raise NsmError(ErrorCode.InvalidArgument, f"{key} is not a u16")
    return value


def _field_opt_bytes(fields: Mapping[Any, Any], key: str) -> bytes | None:
    value = fields.get(key)
    if value is None or isinstance(value, bytes):
        return value
    raise NsmError(ErrorCode.InvalidArgument, f"{key} is neither a byte string nor null")
