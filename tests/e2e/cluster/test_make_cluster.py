"""`make cluster` on a machine that cannot run it: one line that says what is missing, nothing started."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_without_its_tools_it_says_which_is_missing(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.e2e.cluster", "--dir", str(tmp_path / "run")],
        cwd=ROOT,
        env={"PATH": str(tmp_path)},  # no unshare, ip or go on it
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("make cluster: the cluster needs "), result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()
