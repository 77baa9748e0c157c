"""Key rotation: EnableKeyRotation, DisableKeyRotation, GetKeyRotationStatus,
RotateKeyOnDemand, ListKeyRotations.

Each rotation adds a backing-key version and makes it current; new ciphertexts name the new
version in their header and every older version stays available for Decrypt. Automatic
rotation is evaluated lazily: when an Enabled key whose ``next_rotation_date`` has passed (by
the service clock) is next used, it is rotated once and the next date is set a full period
from then. Only symmetric encryption keys rotate (AWS).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from enclave_kms._keymaterial import generate_kms_key_material, zero
from enclave_kms._service_core import ServiceCore
from enclave_kms._service_keys import key_id_checks, page_checks
from enclave_kms._service_validation import MODEL_INCLUDE_KEY_MATERIAL, Checks
from enclave_kms.errors import InvalidMarkerException, UnsupportedOperationException
from enclave_kms.model import (
    Caller,
    DisableKeyRotationRequest,
    DisableKeyRotationResponse,
    EnableKeyRotationRequest,
    EnableKeyRotationResponse,
    GetKeyRotationStatusRequest,
    GetKeyRotationStatusResponse,
    ListKeyRotationsRequest,
    ListKeyRotationsResponse,
    RotateKeyOnDemandRequest,
    RotateKeyOnDemandResponse,
    RotationsListEntry,
)
from enclave_kms.store import KeyRecord

__all__ = ["RotationOperations"]

DEFAULT_ROTATION_PERIOD_DAYS = 365


class RotationOperations(ServiceCore):
    """Rotation operations."""

    def _rotatable(self, key: KeyRecord) -> None:
        if key.key_spec != "SYMMETRIC_DEFAULT":
            raise UnsupportedOperationException(
                f"{self._arn(key.key_id)} key spec {key.key_spec} does not support rotation."
            )

    def enable_key_rotation(
        self, caller: Caller, request: EnableKeyRotationRequest
    ) -> EnableKeyRotationResponse:
        """EnableKeyRotation: RotationPeriodInDays 90..2560 (default 365).

        Raises:
            DisabledException / KMSInvalidStateException: the key's state.
            UnsupportedOperationException: an asymmetric key.
        """
        with self._operation("EnableKeyRotation", caller) as op:
            checks = Checks()
            key_id_checks(checks, request.key_id)
            checks.integer(request.rotation_period_in_days, "RotationPeriodInDays", 90, 2560)
            checks.raise_if_any()
            key = self._authorized_management_key(op, request.key_id, "EnableKeyRotation")
            self._require_enabled(key)
            self._rotatable(key)
            period = request.rotation_period_in_days or DEFAULT_ROTATION_PERIOD_DAYS
            self._store.update_key(
                key.key_id,
                {
                    "rotation_enabled": True,
                    "rotation_period_days": period,
                    "next_rotation_date": op.time + timedelta(days=period),
                },
            )
            return EnableKeyRotationResponse()

    def disable_key_rotation(
        self, caller: Caller, request: DisableKeyRotationRequest
    ) -> DisableKeyRotationResponse:
        """DisableKeyRotation.

        Raises:
            DisabledException / KMSInvalidStateException: the key's state.
            UnsupportedOperationException: an asymmetric key.
        """
        with self._operation("DisableKeyRotation", caller) as op:
            checks = Checks()
            key_id_checks(checks, request.key_id)
            checks.raise_if_any()
            key = self._authorized_management_key(op, request.key_id, "DisableKeyRotation")
            self._require_enabled(key)
            self._rotatable(key)
            self._store.update_key(
                key.key_id, {"rotation_enabled": False, "next_rotation_date": None}
            )
            return DisableKeyRotationResponse()

    def get_key_rotation_status(
        self, caller: Caller, request: GetKeyRotationStatusRequest
    ) -> GetKeyRotationStatusResponse:
        """GetKeyRotationStatus."""
        with self._operation("GetKeyRotationStatus", caller) as op:
            checks = Checks()
            key_id_checks(checks, request.key_id)
            checks.raise_if_any()
            key = self._authorized_management_key(op, request.key_id, "GetKeyRotationStatus")
            self._rotatable(key)
            return GetKeyRotationStatusResponse(
                key_rotation_enabled=key.rotation_enabled,
                key_id=self._arn(key.key_id),
                rotation_period_in_days=key.rotation_period_days if key.rotation_enabled else None,
                next_rotation_date=key.next_rotation_date if key.rotation_enabled else None,
                on_demand_rotation_start_date=key.on_demand_rotation_date,
            )

    def rotate_key_on_demand(
        self, caller: Caller, request: RotateKeyOnDemandRequest
    ) -> RotateKeyOnDemandResponse:
        """RotateKeyOnDemand: a new backing version now (automatic schedule unchanged).

        Raises:
            DisabledException / KMSInvalidStateException: the key's state.
            UnsupportedOperationException: an asymmetric key.
        """
        with self._operation("RotateKeyOnDemand", caller) as op:
            checks = Checks()
            key_id_checks(checks, request.key_id)
            checks.raise_if_any()
            key = self._authorized_management_key(op, request.key_id, "RotateKeyOnDemand")
            self._require_enabled(key)
            self._rotatable(key)
            # On-demand rotation does not move the automatic schedule (AWS).
            self._rotate_on_demand(key, op.time)
            return RotateKeyOnDemandResponse(key_id=self._arn(key.key_id))

    def _rotate_on_demand(self, key: KeyRecord, now: datetime) -> None:
        secret = generate_kms_key_material(key.key_spec, self._randbytes)
        try:
            self._store.rotate_key(
                key.key_id,
                material_id=self._new_material_id(),
                secret=secret,
                created=now,
                rotation_type="ON_DEMAND",
                changes={"on_demand_rotation_date": now},
            )
        finally:
            zero(secret)

    def list_key_rotations(
        self, caller: Caller, request: ListKeyRotationsRequest
    ) -> ListKeyRotationsResponse:
        """ListKeyRotations: completed rotations (versions after the first), oldest first.

        Raises:
            InvalidMarkerException: a marker this service did not issue.
            UnsupportedOperationException: an asymmetric key.
        """
        with self._operation("ListKeyRotations", caller) as op:
            checks = Checks()
            key_id_checks(checks, request.key_id)
            checks.enum(request.include_key_material, "IncludeKeyMaterial",
                        MODEL_INCLUDE_KEY_MATERIAL)  # fmt: skip
            page_checks(checks, request.limit, request.marker)
            checks.raise_if_any()
            key = self._authorized_management_key(op, request.key_id, "ListKeyRotations")
            self._rotatable(key)
            versions = list(self._store.list_materials(key.key_id))
            if request.include_key_material != "ALL_KEY_MATERIAL":
                versions = [v for v in versions if v.rotation_type is not None]
            start = 0
            if request.marker is not None:
                if not request.marker.isdigit():
                    raise InvalidMarkerException("The marker is not valid.")
                start = int(request.marker)
            limit = request.limit or 100
            page = versions[start : start + limit]
            truncated = start + limit < len(versions)
            return ListKeyRotationsResponse(
                rotations=tuple(
                    RotationsListEntry(
                        key_id=self._arn(key.key_id),
                        key_material_id=v.material_id,
                        key_material_state=(
                            "CURRENT" if v.version == key.current_version else "NON_CURRENT"
                        ),
                        rotation_date=v.created if v.rotation_type is not None else None,
                        rotation_type=v.rotation_type,
                    )
                    for v in page
                ),
                next_marker=str(start + limit) if truncated else None,
                truncated=truncated,
            )
