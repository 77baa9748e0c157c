"""The committed minted fixtures: every scenario, regenerated from a fixed seed and fixed times.

``fixtures/generate_minted.py`` calls :func:`write_minted_fixtures`; the drift test calls it into
a temporary directory and compares the bytes with the committed ``fixtures/minted/``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from attestation.nsm import Nsm
from attestation.testing.measurements import BootMeasurements
from attestation.testing.mint import VARIANTS, Variant, mint_document, timestamp_ms
from attestation.testing.nsm import SimulatedNsm
from attestation.testing.pki import TestPki, derive_p384_key

__all__ = [
    "FIXTURE_PKI_VALID_FROM",
    "FIXTURE_SEED",
    "FIXTURE_TIMESTAMP",
    "Scenario",
    "fixture_pki",
    "scenarios",
    "write_minted_fixtures",
]

FIXTURE_SEED = 20250101
FIXTURE_PKI_VALID_FROM = datetime(2025, 1, 1, tzinfo=UTC)
FIXTURE_TIMESTAMP = datetime(2025, 1, 1, 12, 0, 0, 123000, tzinfo=UTC)
_ROLE_ARN = "arn:aws:iam::123456789012:role/enclave-kms-test"


@dataclass(frozen=True)
class Scenario:
    """One fixture: how to mint it and what a verifier must say about it."""

    name: str
    description: str
    inputs: dict[str, Any]
    expected_error: str | None
    verify_at: str  # an ISO instant, or "document"
    mint: Callable[[TestPki], bytes]


def fixture_pki() -> TestPki:
    """The PKI behind ``fixtures/minted`` (genuine CA lifetimes from 2025-01-01)."""
    return TestPki.create(FIXTURE_SEED, valid_from=FIXTURE_PKI_VALID_FROM)


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def scenarios(pki: TestPki) -> list[Scenario]:
    """Every fixture scenario, valid ones first, then one per :class:`Variant`."""
    ts = FIXTURE_TIMESTAMP
    spki = (
        derive_p384_key(pki.seed, "recipient")
        .public_key()
        .public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    )
    prod = BootMeasurements(
        image=b"enclave-kms fixture image",
        bootstrap=b"enclave-kms fixture kernel+init",
        application=b"enclave-kms fixture application",
        role_arn=_ROLE_ARN,
        instance_id=pki.instance_id,
    )
    nonce = hashlib.sha256(b"fixture nonce").digest()
    big = bytes(range(256)) * 4
    app_pcrs = {**prod.pcrs(), 16: hashlib.sha384(b"app-locked").digest()}
    valid: list[tuple[str, str, dict[str, Any]]] = [
        ("valid-prod", "production image, role and instance measured, no optionals", {}),
        ("valid-debug", "debug mode: PCR0..2 zero, nonce set", {"debug": True, "nonce": nonce}),
        (
            "valid-public-key",
            "P-384 SPKI public_key, nonce and user_data",
            {"public_key": spki, "nonce": nonce, "user_data": b"hello enclave"},
        ),
        (
            "valid-max-optionals",
            "public_key, user_data and nonce of 1024 bytes each (as blocky's samples)",
            {"public_key": big, "user_data": big, "nonce": big},
        ),
        (
            "valid-empty-public-key",
            "0-length public_key (as hf/nitrite's sample)",
            {"public_key": b""},
        ),
        ("valid-app-locked-pcr", "PCR16 locked by the application", {"pcrs": app_pcrs}),
    ]
    out = [
        Scenario(
            name,
            desc,
            kwargs,
            None,
            _iso(ts),
            partial(_mint_valid, boot=prod, kwargs=kwargs),
        )
        for name, desc, kwargs in valid
    ]
    out.append(
        Scenario(
            "valid-simulated-nsm",
            "from SimulatedNsm through the Nsm client after ExtendPCR+LockPCR of PCR16",
            {"public_key": spki, "nonce": nonce},
            None,
            _iso(ts),
            partial(_from_simulated_nsm, boot=prod, spki=spki, nonce=nonce),
        )
    )
    for v in Variant:
        spec = VARIANTS[v]
        error = spec.expected_error.__name__ if spec.expected_error else None
        out.append(
            Scenario(
                ("valid-" if error is None else "invalid-") + v.value,
                spec.description,
                {"variant": v.value, "nonce": nonce},
                error,
                _iso(ts) if spec.verify_at == "timestamp" else "document",
                partial(_mint_variant, boot=prod, nonce=nonce, variant=v),
            )
        )
    return out


def _mint_valid(pki: TestPki, *, boot: BootMeasurements, kwargs: dict[str, Any]) -> bytes:
    rest = {k: v for k, v in kwargs.items() if k != "pcrs"}
    return mint_document(pki, pcrs=kwargs.get("pcrs", boot), timestamp=FIXTURE_TIMESTAMP, **rest)


def _mint_variant(pki: TestPki, *, boot: BootMeasurements, nonce: bytes, variant: Variant) -> bytes:
    return mint_document(pki, pcrs=boot, timestamp=FIXTURE_TIMESTAMP, nonce=nonce, variant=variant)


def _from_simulated_nsm(
    pki: TestPki, *, boot: BootMeasurements, spki: bytes, nonce: bytes
) -> bytes:
    nsm = Nsm(SimulatedNsm(pki, pcrs=boot, clock=lambda: FIXTURE_TIMESTAMP, rng=bytes))
    nsm.extend_pcr(16, b"application state")
    nsm.lock_pcr(16)
    return nsm.get_attestation_doc(public_key=spki, nonce=nonce)


def _describe(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"length": len(value), "hex": value.hex()}
    if isinstance(value, dict):
        return {str(k): _describe(v) for k, v in value.items()}
    return value


def write_minted_fixtures(directory: str | Path) -> list[Path]:
    """Write every scenario's ``.cose`` and ``.json`` sidecar, ``INDEX.json`` and the PKI files.

    Returns:
        The paths written, sorted.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    pki = fixture_pki()
    pki.save(d)
    written = [d / "root.pem", d / "chain.pem", d / "pki.json"]
    index = []
    for sc in scenarios(pki):
        data = sc.mint(pki)
        (d / f"{sc.name}.cose").write_bytes(data)
        sidecar = {
            "file": f"{sc.name}.cose",
            "scenario": sc.name,
            "description": sc.description,
            "expected": "valid" if sc.expected_error is None else "invalid",
            "error": sc.expected_error,
            "verify_at": sc.verify_at,
            "trust": "root.pem (enclave-kms test PKI, DO NOT TRUST)",
            "sha256": hashlib.sha256(data).hexdigest(),
            "size_bytes": len(data),
            "module_id": pki.default_module_id,
            "timestamp_ms": timestamp_ms(FIXTURE_TIMESTAMP),
            "inputs": _describe(sc.inputs),
        }
        (d / f"{sc.name}.json").write_text(json.dumps(sidecar, indent=2) + "\n")
        written += [d / f"{sc.name}.cose", d / f"{sc.name}.json"]
        index.append({k: sidecar[k] for k in ("file", "expected", "error", "verify_at")})
    (d / "INDEX.json").write_text(json.dumps(index, indent=2) + "\n")
    written.append(d / "INDEX.json")
    return sorted(written)
