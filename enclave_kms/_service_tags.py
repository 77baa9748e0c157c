"""Tags: TagResource, UntagResource, ListResourceTags, and the tag checks CreateKey shares.

AWS limits: at most 50 tags per key; keys 1..128 characters, values 0..256; the ``aws:``
key prefix is reserved for AWS.
"""

from __future__ import annotations

from enclave_kms._service_core import ServiceCore
from enclave_kms._service_validation import Checks, key_id_checks, page_checks
from enclave_kms.errors import InvalidMarkerException, LimitExceededException, TagException
from enclave_kms.model import (
    Caller,
    ListResourceTagsRequest,
    ListResourceTagsResponse,
    Tag,
    TagResourceRequest,
    TagResourceResponse,
    UntagResourceRequest,
    UntagResourceResponse,
)

__all__ = ["MAX_TAGS_PER_KEY", "TagOperations", "check_tags", "reject_reserved_tags"]

MAX_TAGS_PER_KEY = 50


def check_tags(checks: Checks, tags: tuple[Tag, ...] | None, member: str = "Tags") -> None:
    """Each tag has a 1..128-char key and a 0..256-char value."""
    for i, tag in enumerate(tags or ()):
        if checks.required(tag.tag_key, f"{member}.{i + 1}.member.TagKey"):
            checks.string(tag.tag_key, f"{member}.{i + 1}.member.TagKey", 1, 128)
        if checks.required(tag.tag_value, f"{member}.{i + 1}.member.TagValue"):
            checks.string(tag.tag_value, f"{member}.{i + 1}.member.TagValue", 0, 256)


def reject_reserved_tags(keys: list[str]) -> None:
    """AWS reserves the ``aws:`` tag-key prefix for its own tags."""
    for k in keys:
        if k.lower().startswith("aws:"):
            raise TagException("Tags beginning with aws: are reserved.")


class TagOperations(ServiceCore):
    """Tag operations on keys."""

    def tag_resource(self, caller: Caller, request: TagResourceRequest) -> TagResourceResponse:
        """TagResource: add or overwrite tags.

        Raises:
            TagException: a reserved ``aws:`` key.
            LimitExceededException: more than 50 tags on the key.
            KMSInvalidStateException: the key is pending deletion.
        """
        with self._operation("TagResource", caller) as op:
            checks = Checks()
            key_id_checks(checks, request.key_id)
            checks.required(request.tags, "Tags")
            check_tags(checks, request.tags)
            checks.raise_if_any()
            key = self._authorized_management_key(op, request.key_id, "TagResource")
            self._require_not_pending(key)
            tags = [(t.tag_key or "", t.tag_value or "") for t in request.tags or ()]
            reject_reserved_tags([k for k, _ in tags])
            existing = {k for k, _ in self._store.list_tags(key.key_id)}
            if len(existing | {k for k, _ in tags}) > MAX_TAGS_PER_KEY:
                raise LimitExceededException(f"A key can have at most {MAX_TAGS_PER_KEY} tags.")
            self._store.put_tags(key.key_id, tags)
            return TagResourceResponse()

    def untag_resource(
        self, caller: Caller, request: UntagResourceRequest
    ) -> UntagResourceResponse:
        """UntagResource: remove tags by key (missing keys are ignored).

        Raises:
            KMSInvalidStateException: the key is pending deletion.
        """
        with self._operation("UntagResource", caller) as op:
            checks = Checks()
            key_id_checks(checks, request.key_id)
            checks.required(request.tag_keys, "TagKeys")
            for i, k in enumerate(request.tag_keys or ()):
                checks.string(k, f"TagKeys.{i + 1}.member", 1, 128)
            checks.raise_if_any()
            key = self._authorized_management_key(op, request.key_id, "UntagResource")
            self._require_not_pending(key)
            self._store.remove_tags(key.key_id, list(request.tag_keys or ()))
            return UntagResourceResponse()

    def list_resource_tags(
        self, caller: Caller, request: ListResourceTagsRequest
    ) -> ListResourceTagsResponse:
        """ListResourceTags with Limit (default 50) / Marker pagination.

        Raises:
            InvalidMarkerException: a marker this service did not issue.
        """
        with self._operation("ListResourceTags", caller) as op:
            checks = Checks()
            key_id_checks(checks, request.key_id)
            page_checks(checks, request.limit, request.marker)
            checks.raise_if_any()
            key = self._authorized_management_key(op, request.key_id, "ListResourceTags")
            tags = list(self._store.list_tags(key.key_id))
            start = 0
            if request.marker is not None:
                names = [k for k, _ in tags]
                if request.marker not in names:
                    raise InvalidMarkerException("The marker is not valid.")
                start = names.index(request.marker) + 1
            limit = request.limit or 50
            page = tags[start : start + limit]
            truncated = start + limit < len(tags)
            return ListResourceTagsResponse(
                tags=tuple(Tag(k, v) for k, v in page),
                next_marker=page[-1][0] if truncated and page else None,
                truncated=truncated,
            )
