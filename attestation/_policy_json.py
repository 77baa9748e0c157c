"""JSON round trip for the built-in policies, so a key store can hold them.

Only classes registered here can be named by a stored document: a key store must not be able
to name arbitrary code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .policy import Policy

__all__ = ["from_json", "policies_from_list", "register", "to_json"]

_T = TypeVar("_T", bound=type)
# JSON type name -> (class, accepted keys).
_REGISTRY: dict[str, tuple[Any, frozenset[str]]] = {}


def register(name: str, *keys: str) -> Callable[[_T], _T]:
    """Class decorator: make a policy class serialisable under ``name`` with ``keys``."""

    def add(cls: _T) -> _T:
        _REGISTRY[name] = (cls, frozenset(keys))
        cls._json_type = name  # type: ignore[attr-defined]
        return cls

    return add


def to_json(policy: Policy) -> dict[str, Any]:
    """Serialise a built-in policy to a JSON-compatible dict (``{"type": ..., ...}``).

    Raises:
        ValueError: ``policy`` is not one of this module's policies (or contains one that is not).
    """
    name = getattr(type(policy), "_json_type", None)
    if name is None or _REGISTRY.get(name, (None,))[0] is not type(policy):
        raise ValueError(f"{type(policy).__name__} is not a serialisable policy")
    return {"type": name, **policy._json()}  # type: ignore[attr-defined]


def from_json(data: Mapping[str, Any]) -> Policy:
    """Rebuild a policy from :func:`to_json` output, validating it as its constructor does.

    Raises:
        ValueError: unknown type, unknown or missing keys, or invalid values.
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("type"), str):
        raise ValueError("a policy is a JSON object with a string 'type'")
    entry = _REGISTRY.get(data["type"])
    if entry is None:
        raise ValueError(f"unknown policy type {data['type']!r}")
    cls, keys = entry
    body = {k: v for k, v in data.items() if k != "type"}
    extra = set(body) - keys
    if extra:
        raise ValueError(f"unknown keys for {data['type']}: {sorted(extra)}")
    try:
        policy: Policy = cls._from(body)
    except KeyError as exc:
        raise ValueError(f"{data['type']} lacks {exc}") from None
    except TypeError as exc:
        raise ValueError(f"{data['type']}: {exc}") from None
    return policy


def policies_from_list(d: Mapping[str, Any]) -> list[Policy]:
    """Rebuild the ``policies`` list of a combinator."""
    items = d["policies"]
    if not isinstance(items, list):
        raise ValueError("policies must be a list")
    return [from_json(p) for p in items]
