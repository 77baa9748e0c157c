"""Request validation with AWS's message format.

AWS reports every constraint violation of a request at once:
``1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy constraint:
Member must have value greater than or equal to 1``. Member paths are the camelCase member
names (``recipient.keyEncryptionAlgorithm`` for nested ones). Blob values are never echoed
(they may be plaintexts), unlike AWS's Java buffer descriptions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from enclave_kms.errors import ValidationException

__all__ = [
    "AWS_USAGES_BY_SPEC",
    "MAX_ENCRYPTION_CONTEXT_BYTES",
    "MAX_GRANT_TOKENS",
    "MODEL_CMK_SPECS",
    "MODEL_DATA_KEY_PAIR_SPECS",
    "MODEL_DATA_KEY_SPECS",
    "MODEL_DRY_RUN_MODIFIERS",
    "MODEL_ENCRYPTION_ALGORITHMS",
    "MODEL_INCLUDE_KEY_MATERIAL",
    "MODEL_KEY_SPECS",
    "MODEL_KEY_USAGES",
    "MODEL_MAC_ALGORITHMS",
    "MODEL_MESSAGE_TYPES",
    "MODEL_ORIGINS",
    "MODEL_SIGNING_ALGORITHMS",
    "Checks",
    "key_id_checks",
    "page_checks",
]

MAX_GRANT_TOKENS = 10
# Our limit on an encryption context (keys and values, UTF-8): AWS publishes none.
MAX_ENCRYPTION_CONTEXT_BYTES = 8192


def _camel(member: str) -> str:
    return ".".join(p[:1].lower() + p[1:] for p in member.split("."))


class Checks:
    """Collects constraint violations and raises them together as one ValidationException."""

    def __init__(self) -> None:
        self._errors: list[str] = []

    def _fail(self, value: object, member: str, constraint: str, *, echo: bool = True) -> None:
        shown = "null" if value is None else (f"'{value}'" if echo else None)
        prefix = f"Value {shown} at" if shown is not None else "Value at"
        self._errors.append(
            f"{prefix} '{_camel(member)}' failed to satisfy constraint: {constraint}"
        )

    def required(self, value: object, member: str) -> bool:
        """Record a violation if ``value`` is None; return whether it is present."""
        if value is None:
            self._fail(None, member, "Member must not be null")
            return False
        return True

    def string(self, value: str | None, member: str, lo: int, hi: int) -> None:
        """Length of an optional string."""
        if value is None:
            return
        if len(value) < lo:
            self._fail(value, member, f"Member must have length greater than or equal to {lo}")
        elif len(value) > hi:
            self._fail(value, member, f"Member must have length less than or equal to {hi}")

    def blob(self, value: bytes | None, member: str, lo: int, hi: int) -> None:
        """Length of an optional blob (the value is never echoed)."""
        if value is None:
            return
        if len(value) < lo:
            self._fail(
                value, member, f"Member must have length greater than or equal to {lo}", echo=False
            )
        elif len(value) > hi:
            self._fail(
                value, member, f"Member must have length less than or equal to {hi}", echo=False
            )

    def integer(self, value: int | None, member: str, lo: int, hi: int) -> None:
        """Range of an optional integer."""
        if value is None:
            return
        if value < lo:
            self._fail(value, member, f"Member must have value greater than or equal to {lo}")
        elif value > hi:
            self._fail(value, member, f"Member must have value less than or equal to {hi}")

    def enum(self, value: str | None, member: str, allowed: Iterable[str]) -> None:
        """Membership of an optional enum string."""
        values = list(allowed)
        if value is not None and value not in values:
            self._fail(value, member, f"Member must satisfy enum value set: [{', '.join(values)}]")

    def grant_tokens(self, tokens: Sequence[str] | None) -> None:
        """GrantTokens: 0..10 entries of 1..8192 chars (accepted and otherwise ignored)."""
        if tokens is None:
            return
        if len(tokens) > MAX_GRANT_TOKENS:
            self._fail(
                "[...]",
                "GrantTokens",
                f"Member must have length less than or equal to {MAX_GRANT_TOKENS}",
            )
        for token in tokens:
            self.string(token, "GrantTokens.member", 1, 8192)

    def encryption_context(self, ctx: Mapping[str, str] | None, member: str) -> None:
        """An encryption context is a string→string map (AAD; its keys go to the audit)."""
        if ctx is None:
            return
        if not isinstance(ctx, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in ctx.items()
        ):
            self._errors.append(
                f"Value at '{_camel(member)}' failed to satisfy constraint: "
                "Member must be a map of strings to strings"
            )
            return
        # AWS publishes no size limit; ours bounds what every audit record and policy
        # evaluation carries (the keys are audited), far above any real context.
        size = sum(len(k.encode("utf-8")) + len(v.encode("utf-8")) for k, v in ctx.items())
        if size > MAX_ENCRYPTION_CONTEXT_BYTES:
            self._errors.append(
                f"Value at '{_camel(member)}' failed to satisfy constraint: Member must have "
                f"a total size of at most {MAX_ENCRYPTION_CONTEXT_BYTES} bytes"
            )
        # Condition keys compare kms:EncryptionContext:<key> case-insensitively (as KMS
        # documents), so "tenant" and "Tenant" in one context would give one condition key
        # two values and could slip past a negated Deny. Such a context is refused.
        folded: dict[str, str] = {}
        for key in sorted(ctx):
            other = folded.setdefault(key.lower(), key)
            if other != key:
                self._errors.append(
                    f"Value at '{_camel(member)}' failed to satisfy constraint: keys "
                    f"{other!r} and {key!r} differ only by case"
                )
                break

    def custom(self, message: str) -> None:
        """A violation AWS words on its own (not the ``Value ... at ...`` form)."""
        self._errors.append(message)

    def raise_if_any(self) -> None:
        """Raise the collected violations.

        Raises:
            ValidationException: at least one violation was recorded.
        """
        if not self._errors:
            return
        n = len(self._errors)
        if n == 1 and not self._errors[0].startswith("Value"):
            raise ValidationException(self._errors[0])
        noun = "error" if n == 1 else "errors"
        raise ValidationException(f"{n} validation {noun} detected: " + "; ".join(self._errors))


# Full enum value sets of the botocore model (kms 2014-11-01). A value outside these is a
# ValidationException; a valid value this service does not implement is refused later with
# UnsupportedOperationException.
MODEL_KEY_SPECS = (
    "RSA_2048", "RSA_3072", "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521",
    "ECC_SECG_P256K1", "SYMMETRIC_DEFAULT", "HMAC_224", "HMAC_256", "HMAC_384", "HMAC_512",
    "SM2", "ML_DSA_44", "ML_DSA_65", "ML_DSA_87", "ECC_NIST_EDWARDS25519", "ML_KEM_512",
    "ML_KEM_768", "ML_KEM_1024",
)  # fmt: skip
MODEL_CMK_SPECS = MODEL_KEY_SPECS[:13]
MODEL_KEY_USAGES = (
    "SIGN_VERIFY", "ENCRYPT_DECRYPT", "GENERATE_VERIFY_MAC", "KEY_AGREEMENT",
    "ENCAPSULATE_DECAPSULATE",
)  # fmt: skip
MODEL_ORIGINS = ("AWS_KMS", "EXTERNAL", "AWS_CLOUDHSM", "EXTERNAL_KEY_STORE")
MODEL_DATA_KEY_SPECS = ("AES_256", "AES_128")
MODEL_DATA_KEY_PAIR_SPECS = (
    "RSA_2048", "RSA_3072", "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521",
    "ECC_SECG_P256K1", "SM2", "ECC_NIST_EDWARDS25519", "ML_KEM_512", "ML_KEM_768", "ML_KEM_1024",
)  # fmt: skip
MODEL_ENCRYPTION_ALGORITHMS = (
    "SYMMETRIC_DEFAULT", "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "SM2PKE",
)  # fmt: skip
MODEL_INCLUDE_KEY_MATERIAL = ("ALL_KEY_MATERIAL", "ROTATIONS_ONLY")
MODEL_SIGNING_ALGORITHMS = (
    "RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512",
    "RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512",
    "ECDSA_SHA_256", "ECDSA_SHA_384", "ECDSA_SHA_512", "SM2DSA", "ML_DSA_SHAKE_256",
    "ED25519_SHA_512", "ED25519_PH_SHA_512",
)  # fmt: skip
MODEL_MESSAGE_TYPES = ("RAW", "DIGEST", "EXTERNAL_MU")
MODEL_MAC_ALGORITHMS = ("HMAC_SHA_224", "HMAC_SHA_256", "HMAC_SHA_384", "HMAC_SHA_512")
MODEL_DRY_RUN_MODIFIERS = ("IGNORE_CIPHERTEXT",)
# The key usages AWS allows per key spec (CreateKey reference), for a ValidationException
# on an impossible pair; KEY_SPECS in _keymaterial says which of them are implemented.
AWS_USAGES_BY_SPEC: dict[str, tuple[str, ...]] = {
    "SYMMETRIC_DEFAULT": ("ENCRYPT_DECRYPT",),
    "RSA_2048": ("ENCRYPT_DECRYPT", "SIGN_VERIFY"),
    "RSA_3072": ("ENCRYPT_DECRYPT", "SIGN_VERIFY"),
    "RSA_4096": ("ENCRYPT_DECRYPT", "SIGN_VERIFY"),
    "ECC_NIST_P256": ("SIGN_VERIFY", "KEY_AGREEMENT"),
    "ECC_NIST_P384": ("SIGN_VERIFY", "KEY_AGREEMENT"),
    "ECC_NIST_P521": ("SIGN_VERIFY", "KEY_AGREEMENT"),
    "ECC_SECG_P256K1": ("SIGN_VERIFY",),
    "HMAC_224": ("GENERATE_VERIFY_MAC",),
    "HMAC_256": ("GENERATE_VERIFY_MAC",),
    "HMAC_384": ("GENERATE_VERIFY_MAC",),
    "HMAC_512": ("GENERATE_VERIFY_MAC",),
}


def key_id_checks(checks: Checks, key_id: str | None, member: str = "KeyId") -> None:
    """``KeyId`` is required and 1..2048 characters."""
    if checks.required(key_id, member):
        checks.string(key_id, member, 1, 2048)


def page_checks(checks: Checks, limit: int | None, marker: str | None) -> None:
    """``Limit`` 1..1000 and ``Marker`` 1..1024."""
    checks.integer(limit, "Limit", 1, 1000)
    checks.string(marker, "Marker", 1, 1024)
