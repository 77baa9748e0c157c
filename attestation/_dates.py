"""The date checks that follow the signature check (nitro-attestation.md §4, §8.2)."""

from __future__ import annotations

from datetime import datetime, timedelta

from cryptography import x509

from .errors import StaleDocumentError

__all__ = ["check_document_dates"]


def check_document_dates(
    timestamp: datetime, leaf: x509.Certificate, verify_at: datetime, skew: timedelta
) -> None:
    """Require ``timestamp`` inside ``leaf``'s validity and not after ``verify_at`` + ``skew``.

    Raises:
        StaleDocumentError: either check fails.
    """
    # The NSM signs with a live leaf, so the document's own timestamp lies within the leaf's
    # validity (3 s to 2.3 h after notBefore in every genuine sample, §4). A timestamp outside
    # it is not a real document time: e.g. a seconds-valued timestamp (§2), which reads as 1970
    # and would otherwise pass when no MaxAge is set.
    if not (leaf.not_valid_before_utc - skew <= timestamp <= leaf.not_valid_after_utc):
        raise StaleDocumentError(
            f"document is dated {timestamp.isoformat()}, outside its signing "
            f"certificate's validity ({leaf.not_valid_before_utc.isoformat()} to "
            f"{leaf.not_valid_after_utc.isoformat()})"
        )
    # Freshness (§8.2): a document dated after the verification time beyond the skew.
    if timestamp - verify_at > skew:
        raise StaleDocumentError(
            f"document is dated {timestamp.isoformat()}, after the verification "
            f"time {verify_at.isoformat()} by more than {skew}"
        )
