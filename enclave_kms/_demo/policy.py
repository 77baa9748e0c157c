"""The demo's enclave images and the key policy that gates data keys on the image's PCR0.

A real deployment gets PCR0 from ``nitro-cli build-enclave`` (the EIF's measurement); the demo
describes its "EIF" as a few byte strings and derives the PCRs the way Nitro measures them
(:class:`attestation.testing.measurements.BootMeasurements`), so the values are exactly what a
simulated NSM booted from that description reports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from attestation.testing.measurements import BootMeasurements

__all__ = [
    "APPROVED_IMAGE",
    "CONDITION_KEY",
    "DATA_KEY_ACTIONS",
    "OTHER_IMAGE",
    "DemoImage",
    "PolicyBuilder",
    "PolicyInputs",
    "attested_only_policy",
    "short_hex",
]

#: The condition key KMS fills from a verified Recipient document (PCR0, lower-case hex).
CONDITION_KEY = "kms:RecipientAttestation:ImageSha384"
#: The operations the enclave needs; only these are gated on the attestation.
DATA_KEY_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")
# AWS's "key administrators" statement, spelled out instead of "kms:Create*"-style wildcards:
# CreateGrant is left out on purpose, since a grant could hand Decrypt to someone without the
# attestation condition. None of these actions reveals key material.
_ADMIN_ACTIONS = (
    "kms:DescribeKey",
    "kms:GetKeyPolicy",
    "kms:PutKeyPolicy",
    "kms:CreateAlias",
    "kms:UpdateAlias",
    "kms:DeleteAlias",
    "kms:ListAliases",
    "kms:ListResourceTags",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateKeyDescription",
    "kms:EnableKey",
    "kms:DisableKey",
    "kms:EnableKeyRotation",
    "kms:DisableKeyRotation",
    "kms:GetKeyRotationStatus",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
)


def short_hex(value: bytes | str, *, head: int = 12, tail: int = 6) -> str:
    """A long hex digest shortened for humans: ``3a9f0c1d2e4b...77a1c0``."""
    text = value.hex() if isinstance(value, bytes) else value
    if len(text) <= head + tail + 3:
        return text
    return f"{text[:head]}...{text[-tail:]}"


@dataclass(frozen=True)
class DemoImage:
    """A demo enclave image: a name and the bytes each boot PCR covers.

    Attributes:
        name: a human label, e.g. ``"payments-enclave:1.0"``.
        image: what PCR0 covers (on Nitro, the whole EIF).
        kernel: what PCR1 covers (kernel and boot ramdisk).
        application: what PCR2 covers (the application ramdisk).
    """

    name: str
    image: bytes
    kernel: bytes
    application: bytes

    def measurements(self, instance_id: str) -> BootMeasurements:
        """The boot measurements of this image on the parent instance ``instance_id``."""
        return BootMeasurements(
            image=self.image,
            bootstrap=self.kernel,
            application=self.application,
            instance_id=instance_id,
        )

    @property
    def pcr0(self) -> bytes:
        """PCR0, the image measurement KMS exposes as ``ImageSha384``."""
        return BootMeasurements(image=self.image).pcrs()[0]


_KERNEL = b"enclave-kms demo: linux kernel 6.1 + nitro init ramdisk"
APPROVED_IMAGE = DemoImage(
    name="payments-enclave:1.0",
    image=b"enclave-kms demo EIF: payments-enclave 1.0 (the image the key policy approves)",
    kernel=_KERNEL,
    application=b"enclave-kms demo: payments application 1.0",
)
# One changed byte in the application would do; a different build is the realistic case.
OTHER_IMAGE = DemoImage(
    name="payments-enclave:1.0-patched",
    image=b"enclave-kms demo EIF: payments-enclave 1.0 with an unreviewed patch",
    kernel=_KERNEL,
    application=b"enclave-kms demo: payments application 1.0 + unreviewed patch",
)


@dataclass(frozen=True)
class PolicyInputs:
    """What a demo key policy is built from.

    Attributes:
        account_id: the 12-digit account that owns the key.
        enclave_role_arn: the role whose temporary credentials the parent hands to the enclave.
        image_sha384: PCR0 of the approved image, lower-case hex.
    """

    account_id: str
    enclave_role_arn: str
    image_sha384: str


#: Builds the key policy document (a JSON-ready dict) for the demo key.
PolicyBuilder = Callable[[PolicyInputs], dict[str, Any]]


def attested_only_policy(inputs: PolicyInputs) -> dict[str, Any]:
    """The demo key policy: data keys only for the approved image, and never without attestation.

    * The account root may administer the key (the actions in ``_ADMIN_ACTIONS``), which keeps
      the key manageable (KMS's lockout safety check wants ``kms:PutKeyPolicy``) without
      granting any cryptographic operation. In AWS the account principal delegates to IAM,
      where the enclave's role would hold no ``kms:PutKeyPolicy``; enclave-kms has no IAM and
      lets the account principal match every principal of the account, so an
      ``aws:PrincipalArn`` condition keeps administration to the root user. Without it the
      parent, holding the role's credentials, could rewrite the policy and drop the gate.
    * The enclave role may call GenerateDataKey and Decrypt only when the request carries a
      Recipient whose verified PCR0 equals the approved image (``StringEqualsIgnoreCase``, as
      the AWS documentation's examples use for this key).
    * An explicit Deny for every principal when ``ImageSha384`` is absent (``Null``): a plain
      call from the parent, or from an administrator, is refused even if another statement
      (added later by someone else) would allow it. An explicit Deny always wins in IAM.
    """
    root = f"arn:aws:iam::{inputs.account_id}:root"
    return {
        "Version": "2012-10-17",
        "Id": "enclave-kms-demo",
        "Statement": [
            {
                "Sid": "KeyAdministrationOnly",
                "Effect": "Allow",
                "Principal": {"AWS": root},
                "Action": list(_ADMIN_ACTIONS),
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:PrincipalArn": root}},
            },
            {
                "Sid": "DataKeysForTheApprovedEnclaveImage",
                "Effect": "Allow",
                "Principal": {"AWS": inputs.enclave_role_arn},
                "Action": list(DATA_KEY_ACTIONS),
                "Resource": "*",
                "Condition": {"StringEqualsIgnoreCase": {CONDITION_KEY: inputs.image_sha384}},
            },
            {
                "Sid": "NothingWithoutAttestation",
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": list(DATA_KEY_ACTIONS),
                "Resource": "*",
                "Condition": {"Null": {CONDITION_KEY: "true"}},
            },
        ],
    }
