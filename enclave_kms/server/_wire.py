"""AWS JSON 1.1 bodies ↔ the core's model dataclasses.

Two sources drive the conversion, so no operation needs its own code:

- botocore's KMS service model says what JSON type each member must have (string, blob, integer,
  boolean, timestamp, list, map, structure). A wrong JSON type is a ``SerializationException``
  with the wording AWS's JSON services use ("NUMBER_VALUE can not be converted to a String",
  "Start of structure or map found where not expected."), checked for every modelled member,
  whether or not the core uses it.
- :mod:`enclave_kms.model` says which dataclass and field each member lands in
  (:func:`enclave_kms.model.aws_name`).

Ranges, lengths, enums and required members are the core's job (``ValidationException``). JSON
``null`` means absent, and members that are not in the model are ignored, as AWS does
(kms-recipient.md §1). On the way out, ``None`` fields are left out — never sent as ``null``
(kms-recipient.md §2) — blobs are base64 with padding and timestamps are epoch seconds.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import enum
import json
import types
import typing
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Any

import botocore.session
from botocore.model import ServiceModel, Shape, StructureShape

from enclave_kms.errors import SerializationException
from enclave_kms.model import aws_name

__all__ = ["decode_request", "encode_error", "encode_response", "kms_service_model"]

_BOOL_TOKENS = {True: "TRUE_VALUE", False: "FALSE_VALUE"}
_TYPE_NAMES = {
    "string": "a String",
    "blob": "a Blob",
    "integer": "an Integer",
    "long": "a Long",
    "boolean": "a Boolean",
    "timestamp": "a Timestamp",
    "double": "a Double",
    "float": "a Float",
    "structure": "a Structure",
    "map": "a Map",
    "list": "a List",
}


@cache
def kms_service_model() -> ServiceModel:
    """botocore's bundled KMS model (loaded once per process)."""
    return botocore.session.get_session().get_service_model("kms")


def _token(value: object) -> str:
    if isinstance(value, bool):
        return _BOOL_TOKENS[value]
    if isinstance(value, int | float):
        return "NUMBER_VALUE"
    return "STRING_VALUE"


def _type_error(value: object, shape: Shape) -> SerializationException:
    # AWS's JSON deserialiser names the JSON token, never the member (and never echoes a value,
    # which could be a plaintext).
    if isinstance(value, dict):
        return SerializationException("Start of structure or map found where not expected.")
    if isinstance(value, list):
        return SerializationException("Start of list found where not expected")
    return SerializationException(
        f"{_token(value)} can not be converted to {_TYPE_NAMES.get(shape.type_name, 'a Value')}"
    )


def _unwrap(hint: Any) -> Any:
    """``X | None`` → ``X``; ``tuple[X, ...]`` → ``X``; anything else unchanged."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = args[0] if len(args) == 1 else hint
        origin = typing.get_origin(hint)
    if origin is tuple:
        hint = typing.get_args(hint)[0]
    return hint


@dataclasses.dataclass(frozen=True, slots=True)
class _Member:
    aws: str
    shape: Shape
    field: str | None  # the dataclass field, or None when the core does not model the member
    cls: type | None  # the dataclass for structure (or list-of-structure) members


@cache
def _plan(cls: type, shape: StructureShape) -> tuple[_Member, ...]:
    """For a dataclass and its botocore shape: every modelled member and where it goes."""
    hints = typing.get_type_hints(cls)
    by_aws = {aws_name(f): f for f in dataclasses.fields(cls)}
    members = []
    for aws, member_shape in shape.members.items():
        f = by_aws.get(aws)
        nested = _unwrap(hints[f.name]) if f is not None else None
        members.append(
            _Member(
                aws,
                member_shape,
                f.name if f is not None else None,
                nested if isinstance(nested, type) and dataclasses.is_dataclass(nested) else None,
            )
        )
    return tuple(members)


def _utf8(value: str, path: str) -> str:
    # JSON may carry a lone UTF-16 surrogate ("\ud800"), which is a str but not text: it cannot
    # be stored, hashed or logged as UTF-8. Refuse it here, as a malformed request.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise SerializationException(f"Invalid UTF-8 string in {path}") from None
    return value


def _decode(value: object, shape: Shape, cls: type | None, path: str) -> Any:
    kind = shape.type_name
    if kind == "string":
        if isinstance(value, str):
            return _utf8(value, path)
    elif kind == "blob":
        if isinstance(value, str):
            try:
                # validate=True refuses non-alphabet characters; missing padding raises too.
                return base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise SerializationException(
                    f"Invalid base64 in {path}: a Blob must be standard base64 with padding."
                ) from None
    elif kind in ("integer", "long"):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind == "boolean":
        if isinstance(value, bool):
            return value
    elif kind == "timestamp":
        if isinstance(value, int | float) and not isinstance(value, bool):
            try:
                return datetime.fromtimestamp(value, UTC)
            except (OverflowError, OSError, ValueError):
                raise SerializationException(f"Timestamp out of range in {path}") from None
    elif kind == "list":
        if isinstance(value, list):
            inner = shape.member  # type: ignore[attr-defined]
            return tuple(
                _decode(item, inner, cls, f"{path}[{i}]")
                for i, item in enumerate(value)
                if item is not None
            )
    elif kind == "map":
        if isinstance(value, dict):
            vshape = shape.value  # type: ignore[attr-defined]
            return {
                _utf8(k, f"{path} key"): _decode(v, vshape, None, f"{path}.{k}")
                for k, v in value.items()
                if v is not None
            }
    elif kind == "structure":
        if isinstance(value, dict):
            return _decode_structure(value, shape, cls, path)  # type: ignore[arg-type]
    else:  # pragma: no cover - KMS uses no other shape types (checked by a unit test)
        raise SerializationException(f"Unsupported member type {kind} in {path}")
    raise _type_error(value, shape)


def _decode_structure(
    value: Mapping[str, object], shape: StructureShape, cls: type | None, path: str
) -> Any:
    kwargs: dict[str, Any] = {}
    if cls is None:
        # Not modelled by the core: still type-check, as AWS would, then drop it.
        for aws, member_shape in shape.members.items():
            v = value.get(aws)
            if v is not None:
                _decode(v, member_shape, None, f"{path}.{aws}" if path else aws)
        return None
    for member in _plan(cls, shape):
        v = value.get(member.aws)
        if v is None:
            continue
        decoded = _decode(
            v, member.shape, member.cls, f"{path}.{member.aws}" if path else member.aws
        )
        if member.field is not None:
            kwargs[member.field] = decoded
    return cls(**kwargs)


def _reject_constant(name: str) -> float:
    raise SerializationException(f"{name} is not valid JSON")


# json.loads/json.dumps with any keyword build a new decoder/encoder per call; these are the
# same objects, built once (both are stateless between calls).
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_ENCODER = json.JSONEncoder(separators=(",", ":"))


@cache
def _input_shape(operation: str) -> StructureShape | None:
    return kms_service_model().operation_model(operation).input_shape


def decode_request(operation: str, body: bytes, request_type: type) -> Any:
    """Parse a request body into the operation's request dataclass.

    Args:
        operation: the KMS operation name (``GenerateDataKey``).
        body: the raw JSON body (an empty body means ``{}``).
        request_type: the model's ``<Operation>Request`` dataclass.

    Raises:
        SerializationException: the body is not a JSON object, a member has the wrong JSON type,
            or a blob is not valid base64.
    """
    if body.strip():
        try:
            # What json.loads does for bytes: sniff UTF-8/16/32, then decode.
            data = _DECODER.decode(body.decode(json.detect_encoding(body), "surrogatepass"))
        except SerializationException:
            raise
        except (ValueError, RecursionError):
            # ValueError covers JSONDecodeError and UnicodeDecodeError; no body text is echoed.
            raise SerializationException("Unable to parse the request body as JSON.") from None
    else:
        data = {}
    shape = _input_shape(operation)
    if shape is None:  # an operation without input takes "{}"
        return request_type()
    if not isinstance(data, dict):
        raise _type_error(data, shape)
    return _decode_structure(data, shape, request_type, "")


def _encode(value: object) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, datetime):
        return value.timestamp()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _encode_fields(value)
    if isinstance(value, Mapping):
        return {str(k): _encode(v) for k, v in value.items() if v is not None}
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    raise TypeError(f"cannot encode {type(value).__name__} for the wire")


@cache
def _field_names(cls: type) -> tuple[tuple[str, str], ...]:
    return tuple((f.name, aws_name(f)) for f in dataclasses.fields(cls))


def _encode_fields(obj: object) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cls: type = type(obj)
    for name, aws in _field_names(cls):
        v = getattr(obj, name)
        if v is not None:  # absent, never null (kms-recipient.md §2)
            out[aws] = _encode(v)
    return out


def encode_response(response: object) -> bytes:
    """Serialise a response dataclass to the JSON body, leaving out ``None`` fields.

    Raises:
        TypeError: a field holds a type the wire cannot carry (a bug in the core).
    """
    return _ENCODER.encode(_encode_fields(response)).encode()


def encode_error(aws_type: str, message: str) -> bytes:
    """The AWS JSON 1.1 error body ``{"__type": ..., "message": ...}``."""
    return _ENCODER.encode({"__type": aws_type, "message": message}).encode()
