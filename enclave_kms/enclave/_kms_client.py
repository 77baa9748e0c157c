"""Building the boto3 KMS client and turning botocore failures into SDK errors.

This is the one module of the SDK that touches botocore's exceptions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
import botocore.config
import botocore.exceptions

from enclave_kms.enclave.errors import ConfigurationError, KmsRequestError

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

__all__ = ["Credentials", "build_kms_client", "call_kms"]

_T = TypeVar("_T")


@dataclass(frozen=True)
class Credentials:
    """AWS credentials handed to the enclave by the parent (the enclave cannot reach IMDS).

    kmstool passes them on the command line or over vsock (enclave-ecosystem.md §3). Python
    ``str`` objects cannot be wiped; they are kept out of reprs and never logged.

    Attributes:
        access_key_id: the access key id (not secret; shown in reprs).
        secret_access_key: the secret access key.
        session_token: the session token of temporary credentials, if any.
    """

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


def build_kms_client(
    *,
    region: str | None,
    endpoint_url: str | None,
    credentials: Credentials | None,
) -> KMSClient:
    """Build a boto3 KMS client; credentials default to botocore's normal provider chain.

    Raises:
        ConfigurationError: botocore rejects the region or endpoint.
    """
    # kmstool retries nothing; a few standard-mode retries absorb a throttle without hiding
    # a dead endpoint for long.
    config = botocore.config.Config(retries={"max_attempts": 3, "mode": "standard"})
    try:
        session = boto3.session.Session(
            aws_access_key_id=credentials.access_key_id if credentials else None,
            aws_secret_access_key=credentials.secret_access_key if credentials else None,
            aws_session_token=credentials.session_token if credentials else None,
            region_name=region,
        )
        return session.client("kms", endpoint_url=endpoint_url, config=config)
    except (botocore.exceptions.BotoCoreError, ValueError) as exc:
        raise ConfigurationError(f"cannot build a KMS client: {exc}") from exc


def call_kms(operation: str, method: Callable[..., _T], params: Mapping[str, Any]) -> _T:
    """Call one boto3 client method, converting every botocore failure to KmsRequestError.

    Raises:
        KmsRequestError: KMS answered with an error (``code`` is the AWS error code), or the
            request never got an answer (``code`` is ``None``).
    """
    try:
        return method(**params)
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        raise KmsRequestError(
            operation, str(error.get("Code") or "Unknown"), str(error.get("Message") or "")
        ) from exc
    except botocore.exceptions.ParamValidationError as exc:
        # botocore validates the request against the model before sending it.
        raise KmsRequestError(operation, "ValidationException", str(exc)) from exc
    except botocore.exceptions.BotoCoreError as exc:
        # Connection refused, TLS failure, timeout, no credentials: KMS never answered.
        raise KmsRequestError(operation, None, str(exc)) from exc
