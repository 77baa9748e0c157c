"""JSON mutation for the AWS JSON 1.1 request target: wrong types, sizes, encodings, spellings."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

__all__ = ["dump_json", "mutate_json_value", "random_json_value"]


def random_json_value(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value, biased to what an AWS JSON 1.1 deserialiser chokes on."""
    choice = rng.randrange(12 if depth < 3 else 9)
    if choice == 0:
        return rng.choice(["", "alias/x", "AAAA", "AAA", "QUJD", "!!", "\ud800", "a" * 5000])
    if choice == 1:
        return rng.choice([0, -1, 1, 2**31, 2**63, -(2**63) - 1, 10**400])
    if choice == 2:
        return rng.choice([0.5, -1e308, 1e308, 1e-320])
    if choice == 3:
        return rng.choice([True, False, None])
    if choice == 4:
        return "SYMMETRIC_DEFAULT"
    if choice == 5:
        return rng.choice(["RSAES_OAEP_SHA_256", "AES_256", "ENCRYPT_DECRYPT", "BOGUS"])
    if choice == 6:
        return rng.choice(["mrk-x", "arn:aws:kms:us-east-1:111122223333:key/x", "\x00"])
    if choice == 7:
        return rng.choice(["eyJhIjoxfQ==", "=" * 8, "\u00e9\u00e9", " QUJD"])
    if choice == 8:
        return rng.randrange(-5, 5000)
    if choice == 9:
        return [random_json_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if choice == 10:
        return {f"k{rng.randrange(5)}": random_json_value(rng, depth + 1) for _ in range(3)}
    deep: Any = {}
    for _ in range(rng.choice([50, 2000])):
        deep = [deep]
    return deep


def mutate_json_value(doc: Any, rng: random.Random, member_names: Callable[[], list[str]]) -> Any:
    """Return ``doc`` with one member replaced, removed or added (names from the model)."""
    if not isinstance(doc, dict) or rng.random() < 0.05:
        return random_json_value(rng)
    doc = dict(doc)
    names = member_names()
    op = rng.randrange(5)
    if op == 0 and doc:
        del doc[rng.choice(list(doc))]
    elif op in (1, 2) and names:
        doc[rng.choice(names)] = random_json_value(rng)
    elif op == 3 and doc:
        key = rng.choice(list(doc))
        inner = doc[key]
        if isinstance(inner, dict):
            doc[key] = mutate_json_value(inner, rng, lambda: [f"k{i}" for i in range(3)])
        elif isinstance(inner, list) and inner:
            inner = list(inner)
            inner[rng.randrange(len(inner))] = random_json_value(rng)
            doc[key] = inner
        else:
            doc[key] = random_json_value(rng)
    else:
        doc[f"Unknown{rng.randrange(3)}"] = random_json_value(rng)
    return doc


def dump_json(doc: Any, rng: random.Random) -> bytes:
    """Serialise with a random spelling: compact, spaced, non-ASCII escapes, or odd literals."""
    try:
        text = json.dumps(doc, ensure_ascii=rng.random() < 0.5, separators=(",", ":"))
    except (ValueError, RecursionError):
        return b"{}"
    op = rng.randrange(8)
    if op == 0:
        text = text.replace(":", ": ", 1)
    elif op == 1 and text.startswith("{") and len(text) > 2:
        text = text[:-1] + ',"KeyId":NaN}'  # duplicate or non-standard member
    elif op == 2:
        text = "\ufeff" + text
    elif op == 3 and text.startswith("{") and len(text) > 2:
        text = text[:-1] + ',"KeyId":"a","KeyId":{}}'
    try:
        raw = text.encode("utf-8", "surrogatepass")
    except UnicodeEncodeError:  # pragma: no cover - surrogatepass encodes every str
        raw = b"{}"
    if op == 4:
        raw = text.encode("utf-16", "surrogatepass")
    return raw
