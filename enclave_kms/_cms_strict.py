"""Force asn1crypto's lazy parser through a whole value, as ``.native`` would, but cheaply.

asn1crypto parses on demand: loading a ``ContentInfo`` checks only the outer layers, and a
malformed element deep inside (trailing bytes in a nested SEQUENCE, a bad OID in an attribute
value, a broken second RecipientInfo) is noticed only when something reads it. The envelope
parser must refuse such input, so it used to read everything with ``EnvelopedData.native``.
That builds a native copy of the whole tree and, because asn1crypto marks a SEQUENCE as
"mutated" once an absent DEFAULT field (e.g. RSAES-OAEP's ``pSourceFunc``) has been filled in,
re-encodes every such SEQUENCE again on every ``.native`` call along the path: about 0.5 ms
per envelope, more than the RSA-2048 decryption.

:func:`force_full_parse` performs the same parsing steps in the same order and drops only the
work that cannot fail or change state: building the native dicts and lists of containers, and
the repeated re-encoding of a SEQUENCE whose encoding its parent has just recomputed. Leaves
still get their own ``.native`` (OID, INTEGER, BIT STRING, time and string checks all live
there), so the set of inputs that raise is the same; ``tests/enclave_kms/test_cms_strict.py``
compares the two against the previous ``.native`` parse on mutated envelopes.
"""

from __future__ import annotations

from typing import Any, Final

import asn1crypto
from asn1crypto import core

__all__ = ["force_full_parse"]

# The walk mirrors asn1crypto's private parsing internals (``children``, ``_parse_children``,
# ``_lazy_child``) as of 1.5.1, the current release. Any other version gets the slow but
# self-evidently complete ``.native`` instead of a walk whose equivalence nobody has checked.
_WALK_VERSIONS: Final = frozenset({"1.5.1"})
_CAN_WALK: Final = (
    getattr(asn1crypto, "__version__", None) in _WALK_VERSIONS
    and hasattr(core.Sequence, "_parse_children")
    and hasattr(core.Sequence, "_lazy_child")
    and hasattr(core.SequenceOf, "_parse_children")
    and hasattr(core.SequenceOf, "_lazy_child")
)


def force_full_parse(value: Any) -> None:
    """Parse ``value`` and everything inside it, raising what ``value.native`` would raise.

    Args:
        value: an asn1crypto value, typically a freshly loaded ``EnvelopedData``.

    Raises:
        ValueError: (and the other exceptions asn1crypto raises: TypeError, KeyError,
            UnicodeError, RecursionError on absurd nesting) for any malformed element.
    """
    if _CAN_WALK:
        _walk(value, covered=False)
    else:
        _ = value.native


def _walk(value: Any, *, covered: bool) -> None:
    """Walk ``value`` as ``.native`` would; with :func:`_cannot_force`, the only code here
    that touches asn1crypto internals (gated by :data:`_CAN_WALK`, else ``.native``).

    The steps, per type, are those of that type's ``.native`` property in asn1crypto 1.5.1:

    * ``Sequence``/``Set``/``SequenceOf``/``SetOf``: read ``.contents``; parse the children
      recursively if not yet parsed; build each child and walk it. Reading ``.contents`` of a
      parsed value that holds a filled-in DEFAULT re-encodes its children, and a child whose
      header ends in 0x80 is then re-encoded from its ``.native`` through ``.set()``, which can
      fail where ``.native`` alone succeeds (an empty OID: ``.native`` is "", ``.set("")``
      raises). :func:`_cannot_force` decides when that read can be skipped.
    * ``Choice``: walk ``.chosen``. ``Any``: walk ``.parsed`` (the same generic parse that
      ``.native`` does).
    * Everything else (primitives, ``ParsableOctetString``, ``Void``): call ``.native``, which
      is where the per-type checks live and which, for a ``ParsableOctetString`` already
      parsed under a spec, is the parsed value's own ``.native``.

    ``covered`` skips the ``.contents`` read of a child whose parent, already parsed, has just
    read its own, or skipped it by :func:`_cannot_force`. In the first case the parent's
    re-encoding already re-encoded the child if it was mutated, and if it was not, nothing
    below it is and the read is a plain attribute access: the repeat can neither fail nor
    change anything. In the second, the child's headers lie within the parent's, so
    :func:`_cannot_force` holds for the child too. The repeats are what made ``.native``
    quadratic in the nesting depth.
    Choice and Any children are never covered: ``_is_mutated`` does not look through them.

    Nesting near Python's recursion limit (about 980 levels, which only a crafted input packs
    into :data:`~enclave_kms.cms.MAX_ENVELOPE_SIZE`) raises RecursionError here as it did in
    ``.native``; where exactly depends on the caller's stack depth, in both.
    """
    if isinstance(value, core.Sequence | core.SequenceOf):
        already_parsed = value.children is not None
        # ``.native`` starts with ``if self.contents is None: return None``. On a parsed value
        # that property re-encodes it if mutated; skip that where it provably cannot fail.
        must_read = not already_parsed or not (covered or _cannot_force(value))
        if must_read and value.contents is None:
            return
        if not already_parsed:
            value._parse_children(recurse=True)
        children = value.children
        for index in range(len(children)):
            built = children[index].__class__ is not tuple
            child = children[index] if built else value._lazy_child(index)
            _walk(child, covered=already_parsed and built)
    elif isinstance(value, core.Choice):
        _walk(value.chosen, covered=False)
    elif isinstance(value, core.Any):
        _walk(value.parsed, covered=False)
    else:
        _ = value.native


def _cannot_force(value: Any) -> bool:
    """Whether re-encoding this parsed, unmodified value can only copy bytes, never fail.

    asn1crypto re-encodes a mutated SEQUENCE by dumping its children; a child dump re-encodes
    from ``.native`` (the step that can fail) only when the child's header ends in 0x80, its
    test for indefinite length (true also of a definite long-form length such as ``81 80``).
    Every value the dump reaches has its header inside this value's encoding, so if no header
    there ends in 0x80 the dump cannot fail, and skipping it changes nothing later code reads:
    a mutated value is re-encoded afresh on every dump anyway.
    """
    header = value._header
    contents = value._contents
    if not isinstance(header, bytes) or not isinstance(contents, bytes):
        return False
    return header[-1:] != b"\x80" and not _has_header_ending_0x80(contents)


def _has_header_ending_0x80(data: bytes) -> bool:
    """Whether any BER header in ``data``, at any depth, ends in 0x80; True if unsure.

    Descends into every constructed element. Anything that is not clean BER (truncation, an
    element overrunning its parent) answers True, the safe side for the caller.
    """
    spans = [(0, len(data))]
    while spans:
        pos, end = spans.pop()
        while pos < end:
            constructed = data[pos] & 0x20
            if data[pos] & 0x1F == 0x1F:  # high tag number: base-128 continuation bytes
                pos += 1
                while pos < end and data[pos] & 0x80:
                    pos += 1
            pos += 1
            if pos >= end:
                return True
            first = data[pos]
            pos += 1
            if first < 0x80:
                length = first
            else:
                count = first & 0x7F
                if count == 0 or pos + count > end or data[pos + count - 1] == 0x80:
                    return True  # indefinite, truncated, or long form ending in 0x80
                length = int.from_bytes(data[pos : pos + count], "big")
                pos += count
            if pos + length > end:
                return True
            if constructed:
                spans.append((pos, pos + length))
            pos += length
    return False
