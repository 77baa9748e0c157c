"""The pytest plugin's fixtures, including the README example verbatim."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from readme_examples import run_pasted_test

from attestation import policy


def test_readme_plugin_example_passes_in_a_fresh_test_file(tmp_path: Path) -> None:
    """The README's plugin example, pasted into a new file, passes under pytest."""
    run_pasted_test("def test_my_enclave_key_is_attested(", tmp_path)


def test_nsm_fixture_is_a_fresh_simulated_nsm(nsm, nitro_verifier) -> None:  # type: ignore[no-untyped-def]
    assert nsm.describe_nsm().locked_pcrs == frozenset(range(16))
    nsm.extend_pcr(16, b"state")
    nsm.lock_pcr(16)
    document = nsm.get_attestation_doc(nonce=b"n1")
    result = nitro_verifier.verify(document, policy=policy.Nonce(b"n1"))
    assert sorted(result.pcrs) == list(range(17))


def test_nsm_fixture_state_does_not_leak_between_tests(nsm) -> None:  # type: ignore[no-untyped-def]
    assert not nsm.describe_pcr(16).locked


def test_nitro_verifier_trusts_only_the_test_root(nitro_verifier, nitro_pki) -> None:  # type: ignore[no-untyped-def]
    assert nitro_verifier.trusted_roots == (nitro_pki.root,)


def test_plugin_import_does_not_load_the_harness() -> None:
    code = (
        "import sys, attestation.testing.pytest_plugin\n"
        "loaded = [m for m in sys.modules if m.startswith('attestation.testing.')]\n"
        "print(sorted(loaded))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "['attestation.testing.pytest_plugin']"
