"""JSON ↔ model: botocore's shapes decide the JSON types, the model decides the fields."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enclave_kms import model
from enclave_kms.errors import SerializationException
from enclave_kms.server._wire import (
    decode_request,
    encode_error,
    encode_response,
    kms_service_model,
)


def decode(op: str, body: object) -> object:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return decode_request(op, raw, model.OPERATIONS[op][0])


def test_every_registered_operation_is_in_botocore_and_every_field_maps_to_a_member() -> None:
    service = kms_service_model()
    for name, (req_type, resp_type, _method) in model.OPERATIONS.items():
        op = service.operation_model(name)  # raises if botocore does not know the name
        for cls, shape in ((req_type, op.input_shape), (resp_type, op.output_shape)):
            members = set(shape.members) if shape is not None else set()
            for f in dataclasses.fields(cls):
                assert model.aws_name(f) in members, f"{name}: {cls.__name__}.{f.name}"


def test_only_shape_types_the_decoder_knows_occur_in_the_kms_model() -> None:
    service = kms_service_model()
    kinds = {service.shape_for(n).type_name for n in service.shape_names}
    assert kinds <= {
        "string",
        "blob",
        "integer",
        "long",
        "boolean",
        "timestamp",
        "list",
        "map",
        "structure",
    }


def test_full_request_decodes_into_nested_dataclasses() -> None:
    req = decode(
        "GenerateDataKey",
        {
            "KeyId": "alias/app",
            "NumberOfBytes": 32,
            "EncryptionContext": {"purpose": "test"},
            "GrantTokens": ["g1"],
            "Recipient": {
                "KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256",
                "AttestationDocument": base64.b64encode(b"\x00doc").decode(),
            },
            "SomethingAwsAddsLater": {"x": 1},
        },
    )
    assert req == model.GenerateDataKeyRequest(
        key_id="alias/app",
        number_of_bytes=32,
        encryption_context={"purpose": "test"},
        grant_tokens=("g1",),
        recipient=model.RecipientInfo("RSAES_OAEP_SHA_256", b"\x00doc"),
    )


def test_null_members_are_absent_and_empty_body_is_empty_request() -> None:
    assert decode("GenerateRandom", {"NumberOfBytes": None}) == model.GenerateRandomRequest()
    assert decode("ListKeys", b"") == model.ListKeysRequest()


def test_timestamps_and_booleans_decode() -> None:
    req = decode("CreateKey", {"MultiRegion": False, "Tags": [{"TagKey": "k", "TagValue": "v"}]})
    assert req == model.CreateKeyRequest(multi_region=False, tags=(model.Tag("k", "v"),))


@pytest.mark.parametrize(
    ("op", "body", "message"),
    [
        ("GenerateDataKey", {"KeyId": 5}, "NUMBER_VALUE can not be converted to a String"),
        (
            "GenerateDataKey",
            {"KeyId": {"a": 1}},
            "Start of structure or map found where not expected.",
        ),
        (
            "GenerateDataKey",
            {"NumberOfBytes": "32"},
            "STRING_VALUE can not be converted to an Integer",
        ),
        (
            "GenerateDataKey",
            {"NumberOfBytes": True},
            "TRUE_VALUE can not be converted to an Integer",
        ),
        (
            "GenerateDataKey",
            {"NumberOfBytes": 3.5},
            "NUMBER_VALUE can not be converted to an Integer",
        ),
        ("Encrypt", {"KeyId": "k", "Plaintext": 12}, "NUMBER_VALUE can not be converted to a Blob"),
        (
            "Encrypt",
            {"KeyId": "k", "EncryptionContext": ["a"]},
            "Start of list found where not expected",
        ),
        (
            "Encrypt",
            {"KeyId": "k", "EncryptionContext": {"a": 1}},
            "NUMBER_VALUE can not be converted to a String",
        ),
        ("Decrypt", {"GrantTokens": "t"}, "STRING_VALUE can not be converted to a List"),
        ("Decrypt", {"Recipient": "r"}, "STRING_VALUE can not be converted to a Structure"),
        ("Decrypt", {"DryRun": "yes"}, "STRING_VALUE can not be converted to a Boolean"),
        (
            "CreateKey",
            {"Tags": [{"TagKey": False}]},
            "FALSE_VALUE can not be converted to a String",
        ),
        ("ListKeys", [1, 2], "Start of list found where not expected"),
    ],
)
def test_wrong_json_types_are_serialization_errors(op: str, body: object, message: str) -> None:
    with pytest.raises(SerializationException) as info:
        decode(op, body)
    assert info.value.message == message


@pytest.mark.parametrize("blob", ["AAE", "AA==AA", "not base64!", "AAE=\n"])
def test_invalid_base64_is_a_serialization_error_without_echoing_the_value(blob: str) -> None:
    with pytest.raises(SerializationException) as info:
        decode("Encrypt", {"KeyId": "k", "Plaintext": blob})
    assert "Plaintext" in info.value.message
    assert blob not in info.value.message


@pytest.mark.parametrize("raw", [b"{", b"nope", b'{"a": NaN}', b"\xff\xfe", b'{"KeyId": "a"} x'])
def test_malformed_json_is_a_serialization_error(raw: bytes) -> None:
    with pytest.raises(SerializationException):
        decode("DescribeKey", raw)


def test_a_member_the_core_does_not_model_is_still_type_checked() -> None:
    # "DryRunModifiers" exists in botocore's Decrypt; whatever the core models, a wrong JSON
    # type there is refused like AWS does.
    with pytest.raises(SerializationException):
        decode("Decrypt", {"DryRunModifiers": 1})


def test_response_omits_none_and_encodes_blobs_timestamps_and_nested() -> None:
    created = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    resp = model.DescribeKeyResponse(
        key_metadata=model.KeyMetadata(
            key_id="k1",
            aws_account_id="111122223333",
            creation_date=created,
            enabled=True,
            encryption_algorithms=("SYMMETRIC_DEFAULT",),
        )
    )
    body = json.loads(encode_response(resp))
    assert body == {
        "KeyMetadata": {
            "KeyId": "k1",
            "AWSAccountId": "111122223333",
            "CreationDate": created.timestamp(),
            "Enabled": True,
            "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"],
        }
    }
    gdk = json.loads(
        encode_response(
            model.GenerateDataKeyResponse(
                key_id="k1",
                ciphertext_blob=b"\x01\x02\x03\x00",
                ciphertext_for_recipient=b"\x30\x80",
            )
        )
    )
    assert gdk == {"KeyId": "k1", "CiphertextBlob": "AQIDAA==", "CiphertextForRecipient": "MIA="}
    assert "Plaintext" not in gdk  # absent, not null (kms-recipient.md §2)


def test_error_body_shape() -> None:
    assert json.loads(encode_error("NotFoundException", "gone")) == {
        "__type": "NotFoundException",
        "message": "gone",
    }


@settings(max_examples=100, deadline=None)
@given(
    plaintext=st.binary(min_size=0, max_size=64),
    context=st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=4),
)
def test_blob_and_map_round_trip_through_base64(plaintext: bytes, context: dict[str, str]) -> None:
    body = {
        "KeyId": "k",
        "Plaintext": base64.b64encode(plaintext).decode(),
        "EncryptionContext": context,
    }
    req = decode("Encrypt", body)
    assert req.plaintext == plaintext  # type: ignore[attr-defined]
    assert req.encryption_context == context  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("operation", "body"),
    [
        ("CreateKey", '{"Description": "\\ud800"}'),
        ("TagResource", '{"KeyId": "k", "Tags": [{"TagKey": "\\udfff", "TagValue": "v"}]}'),
        ("Encrypt", '{"KeyId": "k", "Plaintext": "eA==", "EncryptionContext": {"\\ud800": "v"}}'),
        ("PutKeyPolicy", '{"KeyId": "k", "PolicyName": "default", "Policy": "{\\ud800}"}'),
    ],
)
def test_a_lone_surrogate_is_a_serialization_error(operation: str, body: str) -> None:
    # Valid JSON, but not UTF-8 text: it must be refused before it reaches the store or a log.
    request_type = model.OPERATIONS[operation][0]
    with pytest.raises(SerializationException, match="UTF-8"):
        decode_request(operation, body.encode(), request_type)
