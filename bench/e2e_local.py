"""The local cluster's scenarios as figures: `tests/e2e/local` run once, its `e2e:` lines kept.

The same run `make test` does (two peered operators, real migrations, smoke tests and
service replicas, traffic through the Services); here its printed figures become rows.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def scenarios() -> dict[str, Any]:
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "tests/e2e/local"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line.removeprefix("e2e: ").strip() for line in run.stdout.splitlines() if line.startswith("e2e: ")]
    return {
        "passed": run.returncode == 0,
        "seconds": round(time.monotonic() - started, 1),
        "lines": [line for line in lines if not line.startswith("local cluster files kept")],
        "tail": run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-500:],
        "failures": [line for line in run.stdout.splitlines() if line.startswith(("E   ", "FAILED"))][:20],
    }
