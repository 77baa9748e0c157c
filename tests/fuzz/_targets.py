"""The fuzz targets: untrusted bytes in, and either success or a documented error out.

Each :class:`Target` has a ``run`` function (the oracle: it lets only the documented exception
classes pass, checks invariants on success, and lets anything else escape, which the fuzzer
reports as a crash) and a ``mutate`` function that works on the decoded structure. The same
targets drive the atheris harnesses (``fuzz_*.py``) and the bounded run in the test suite.

The four parsers and their only allowed outcomes:

- attestation: ``Verifier.verify`` / ``parse_document`` → ``AttestationError`` subclasses;
- cms: ``parse_ciphertext_for_recipient`` / ``decrypt_ciphertext_for_recipient`` → ``CmsError``;
- ciphertext: ``read_header`` / ``open_blob`` → ``InvalidCiphertextException``;
- wire: ``decode_request`` (the JSON request layer) → ``KmsError`` subclasses.

Product modules are imported at the top on purpose: a harness imports this module inside
``atheris.instrument_imports()``, and only modules imported there get coverage instrumentation.
"""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from _mutators import mutate_bytes
from _targets_attestation import mutate_attestation, run_attestation
from _targets_kms import (
    mutate_blob,
    mutate_cms,
    mutate_wire,
    run_blob,
    run_cms,
    run_wire,
)

__all__ = ["CORPORA", "TARGETS", "Target", "main", "mutation_loop", "seeds"]

CORPORA = Path(__file__).resolve().parents[2] / "fixtures" / "fuzz"

Raw = Callable[[bytes], bytes]


@dataclass(frozen=True)
class Target:
    """One fuzz target.

    Attributes:
        name: the corpus directory name under ``fixtures/fuzz/``.
        run: the oracle; raises only on a bug.
        mutate: structure-aware mutation ``(data, rng, raw) -> data``.
        max_len: the largest input worth trying (a little over the parser's own bound).
    """

    name: str
    run: Callable[[bytes], None]
    mutate: Callable[[bytes, random.Random, Raw], bytes]
    max_len: int

    @property
    def corpus(self) -> Path:
        return CORPORA / self.name

    @property
    def regressions(self) -> Path:
        return CORPORA / "regressions" / self.name


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        # MAX_DOCUMENT_SIZE is 16 KiB; MAX_ENVELOPE_SIZE 8 KiB; a blob carries <= 4096 + 71.
        Target("attestation", run_attestation, mutate_attestation, 16 * 1024 + 64),
        Target("cms", run_cms, mutate_cms, 8192 + 64),
        Target("ciphertext", run_blob, mutate_blob, 6144),
        Target("wire", run_wire, mutate_wire, 16 * 1024),
    )
}


def seeds(target: Target) -> list[bytes]:
    """The committed seed corpus of ``target``, in a stable order."""
    return [p.read_bytes() for p in sorted(target.corpus.iterdir()) if p.is_file()]


def mutation_loop(target: Target, iterations: int, seed: int, raw: Raw | None = None) -> int:
    """Run ``iterations`` structure-aware mutations without libFuzzer (no coverage feedback).

    Each mutant is derived from a seed or from an earlier mutant, so mutations stack. Returns the
    number of inputs run; on a bug the target's exception propagates, and the input that caused
    it is in ``mutation_loop.last_input`` (callers save it).
    """
    rng = random.Random(seed)
    pool = seeds(target)
    byte_mutator = raw or (lambda d: _raw_fallback(d, rng, target.max_len))
    for _ in range(iterations):
        parent = rng.choice(pool)
        try:
            data = target.mutate(parent, rng, byte_mutator)[: target.max_len]
        except Exception:  # a mutator bug is not a finding; mutate the bytes instead
            data = byte_mutator(parent)[: target.max_len]
        mutation_loop.last_input = data  # type: ignore[attr-defined]
        target.run(data)
        if rng.random() < 0.15:
            pool.append(data)
        if len(pool) > 256:
            del pool[rng.randrange(len(pool))]
    return iterations


def _raw_fallback(data: bytes, rng: random.Random, max_len: int) -> bytes:
    return mutate_bytes(data, rng, max_len)


def main(name: str) -> None:
    """Entry point of ``fuzz_<name>.py``: libFuzzer arguments pass through unchanged.

    With no corpus directory on the command line, the working corpus is
    ``$FUZZ_WORKDIR/<name>/corpus`` (default ``.fuzz/`` in the repository) followed by the
    committed seeds, which libFuzzer only reads; crashes go to ``$FUZZ_WORKDIR/<name>/``.
    Defaults that bound time and memory (overridable): ``-timeout=10 -rss_limit_mb=2048
    -malloc_limit_mb=1024 -max_len=<target bound>``.
    """
    import atheris

    target = TARGETS[name]
    argv = list(sys.argv)
    flags = [a for a in argv[1:] if a.startswith("-")]
    if not [a for a in argv[1:] if not a.startswith("-")]:
        root = Path(os.environ.get("FUZZ_WORKDIR", CORPORA.parents[1] / ".fuzz")) / name
        (root / "corpus").mkdir(parents=True, exist_ok=True)
        argv += [str(root / "corpus"), str(target.corpus)]
        if not any(a.startswith("-artifact_prefix=") for a in flags):
            argv.append(f"-artifact_prefix={root}{os.sep}")
    defaults = {
        "-timeout": "10",
        "-rss_limit_mb": "2048",
        "-malloc_limit_mb": "1024",
        "-max_len": str(target.max_len),
    }
    for flag, value in defaults.items():
        if not any(a.startswith(flag + "=") for a in flags):
            argv.insert(1, f"{flag}={value}")

    def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)
        try:
            out = target.mutate(data, rng, lambda d: atheris.Mutate(d, max_size))
        except Exception:  # a mutator bug must not stop the fuzzer; fall back to libFuzzer's
            out = atheris.Mutate(data, max_size)
        return out[:max_size]

    atheris.Setup(argv, target.run, custom_mutator=custom_mutator)
    atheris.Fuzz()
