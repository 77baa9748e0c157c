"""Bounded fuzzing in the test suite: seeds, a structure-aware mutation run, and libFuzzer.

Three layers, each short enough for ``make test`` (about 10 s in all on two cores):

1. every committed seed (``fixtures/fuzz/<target>/``) gives a documented outcome, and the
   seeds that should succeed do;
2. a seeded, structure-aware mutation loop per target, in process, without coverage feedback
   (set ``FUZZ_SEED`` to explore other sequences);
3. the atheris harnesses themselves, for ~2 s each in parallel subprocesses, with libFuzzer's
   coverage feedback, time (``-timeout``) and memory (``-rss_limit_mb``) limits. A crash fails
   the test and names the input file libFuzzer wrote.

Longer runs: ``make fuzz`` (``FUZZ_SECONDS`` per target).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import make_seeds
import pytest
from _targets import TARGETS, mutation_loop, seeds
from _targets_attestation import run_attestation
from _targets_kms import BLOB_CONTEXT, BLOB_KEY, split_wire

from attestation import Verifier, aws_nitro_root, policy
from enclave_kms._ciphertext import open_blob
from enclave_kms.cms import parse_ciphertext_for_recipient
from enclave_kms.model import OPERATIONS
from enclave_kms.server._wire import decode_request

HERE = Path(__file__).resolve().parent
NAMES = sorted(TARGETS)
SEED = int(os.environ.get("FUZZ_SEED", "1"))


@pytest.mark.parametrize("name", NAMES)
def test_every_seed_gives_a_documented_outcome(name: str) -> None:
    target = TARGETS[name]
    corpus = seeds(target)
    assert len(corpus) >= 4, f"seed corpus for {name} is missing or nearly empty"
    for data in corpus:
        target.run(data)


@pytest.mark.parametrize("name", ["attestation", "ciphertext", "wire"])
def test_committed_seeds_match_their_generator(name: str) -> None:
    expected = make_seeds.GENERATORS[name]()
    committed = {p.name: p.read_bytes() for p in TARGETS[name].corpus.iterdir()}
    assert committed == expected, f"rerun tests/fuzz/make_seeds.py: {name} seeds drifted"


def test_cms_seeds_keep_the_real_kms_samples(fixtures_dir: Path) -> None:
    # The rest of the cms corpus is randomised (RSA-OAEP); it is checked by parsing below.
    for sample in (fixtures_dir / "kms").glob("*.*er"):
        assert (TARGETS["cms"].corpus / sample.name).read_bytes() == sample.read_bytes()


def test_seeds_reach_the_success_paths(fixtures_dir: Path) -> None:
    corpus = fixtures_dir / "fuzz"
    # Genuine hardware documents verify in audit mode against the AWS root.
    genuine = (corpus / "attestation" / "evervault-ga-valid.cose").read_bytes()
    with pytest.warns(policy.UnsafePolicyWarning):
        Verifier([aws_nitro_root()]).verify(genuine, policy=policy.UnsafeNoOp(), at="document")
    run_attestation((corpus / "attestation" / "minted-key-nonce.cose").read_bytes())
    for path in sorted((corpus / "cms").iterdir()):
        if path.name != "constructed-definite-content.ber":  # see test_fuzz_regressions.py
            parse_ciphertext_for_recipient(path.read_bytes())
    blob = (corpus / "ciphertext" / "valid-32.blob").read_bytes()
    assert open_blob(blob, backing_key=BLOB_KEY, encryption_context=BLOB_CONTEXT) == bytes(32)
    for path in sorted((corpus / "wire").iterdir()):
        operation, body = split_wire(path.read_bytes())
        decode_request(operation, body, OPERATIONS[operation][0])


@pytest.mark.parametrize("name", NAMES)
def test_structure_aware_mutation_run(name: str, tmp_path: Path) -> None:
    target = TARGETS[name]
    try:
        mutation_loop(target, iterations=300, seed=SEED)
    except BaseException:
        crash = tmp_path / f"crash-{name}"
        crash.write_bytes(mutation_loop.last_input)  # type: ignore[attr-defined]
        print(f"{name}: undocumented outcome for the input saved at {crash}", file=sys.stderr)
        raise


@pytest.mark.skipif(
    importlib.util.find_spec("atheris") is None,
    reason="atheris is not installed (pip install atheris); the in-process layers still ran",
)
def test_libfuzzer_bounded_run(tmp_path: Path) -> None:
    procs = {}
    for name in NAMES:
        work = tmp_path / name
        (work / "corpus").mkdir(parents=True)
        log = (work / "log").open("wb")
        cmd = [
            sys.executable,
            str(HERE / f"fuzz_{name}.py"),
            "-max_total_time=2",
            "-runs=200000",
            f"-seed={SEED}",
            "-timeout=10",
            "-rss_limit_mb=1024",
            f"-artifact_prefix={work}{os.sep}",
            str(work / "corpus"),
            str(TARGETS[name].corpus),
        ]
        procs[name] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log)
    deadline = time.monotonic() + 120
    failures = []
    for name, (proc, log) in procs.items():
        try:
            rc = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        log.close()
        work = tmp_path / name
        artifacts = sorted(
            str(p) for p in work.iterdir() if p.name.startswith(("crash-", "timeout-", "oom-"))
        )
        if rc != 0 or artifacts:
            tail = (work / "log").read_text(errors="replace")[-3000:]
            failures.append(f"{name}: exit {rc}, inputs {artifacts}\n{tail}")
        else:
            assert "Done" in (work / "log").read_text(errors="replace"), f"{name} did not run"
    assert not failures, "\n\n".join(failures)
