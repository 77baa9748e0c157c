"""Run a README code example as a user would: pasted into a new test file, under pytest."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def run_pasted_test(defines: str, workdir: Path) -> None:
    """Paste the README's python block containing ``defines`` into a file and run pytest on it.

    The block is read from README.md, so the documentation cannot drift from what works, and the
    fixtures come from the installed plugins (the pytest11 entry points), not from a conftest.
    """
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    example = next(b for b in blocks if defines in b)
    (workdir / "test_pasted.py").write_text(example, encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(workdir)],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 passed" in out.stdout
