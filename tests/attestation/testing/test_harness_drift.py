"""The committed fixtures/minted/ equal what fixtures/generate_minted.py produces today."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_regenerated_fixtures_are_byte_identical(fixtures_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "minted"
    subprocess.run(
        [sys.executable, str(fixtures_dir / "generate_minted.py"), str(out)],
        check=True,
        capture_output=True,
    )
    committed = {p.name: p.read_bytes() for p in (fixtures_dir / "minted").iterdir()}
    regenerated = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(regenerated) == sorted(committed)
    drifted = [name for name in committed if committed[name] != regenerated[name]]
    assert drifted == [], f"regenerate with: python fixtures/generate_minted.py ({drifted})"
