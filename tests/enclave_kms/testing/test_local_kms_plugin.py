"""The local-KMS pytest plugin, including the README example verbatim."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from readme_examples import run_pasted_test

pytestmark = pytest.mark.interop


def test_readme_local_kms_example_passes_in_a_fresh_test_file(tmp_path: Path) -> None:
    """The README's local-KMS example, pasted into a new file, passes under pytest."""
    run_pasted_test("def test_my_enclave_gets_its_data_key(", tmp_path)


def test_plugin_import_starts_and_loads_nothing() -> None:
    code = (
        "import sys, enclave_kms.testing.pytest_plugin\n"
        "print(sorted(m for m in sys.modules if m.startswith(('enclave_kms', 'boto3'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    loaded = "['enclave_kms', 'enclave_kms.testing', 'enclave_kms.testing.pytest_plugin']"
    assert out.stdout.strip() == loaded
