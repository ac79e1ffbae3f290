"""The real control plane's figures: the binaries' build, and `tests/e2e/cluster` run once with its `e2e:` lines kept.

The same run `make test` ends with (kube-apiserver and controllers built from source, two
peered operator Pods installed by Helm, real migrations, smoke tests, service replicas and
Prometheus, traffic through Services); here its printed figures become rows. The build is
timed twice into a throwaway binary cache: "warm" reuses Go's build cache (a change of pins
on a machine that built before), "cold" (only with BENCH_COLD_BUILD=1, about ten minutes on
2 cores) starts from an empty one, as CI's first run does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _build_seconds(go_cache: str | None) -> float:
    with tempfile.TemporaryDirectory(prefix="ragcorp-bench-bin-") as binaries:
        env = {**os.environ, "RAGCORP_CLUSTER_CACHE": binaries}
        if go_cache is not None:
            env["GOCACHE"] = go_cache
        started = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "tests.e2e.cluster.binaries"], cwd=ROOT, env=env, check=True, capture_output=True
        )
        return round(time.monotonic() - started, 1)


def build() -> dict[str, Any]:
    figures: dict[str, Any] = {"warm_seconds": _build_seconds(None)}
    if os.environ.get("BENCH_COLD_BUILD"):
        with tempfile.TemporaryDirectory(prefix="ragcorp-bench-gocache-") as cache:
            figures["cold_seconds"] = _build_seconds(cache)
    return figures


def scenarios() -> dict[str, Any]:
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "tests/e2e/cluster"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line.removeprefix("e2e: ").strip() for line in run.stdout.splitlines() if line.startswith("e2e: ")]
    return {
        "passed": run.returncode == 0,
        "seconds": round(time.monotonic() - started, 1),
        "build": build(),
        "lines": lines,
        "tail": run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-500:],
        "failures": [line for line in run.stdout.splitlines() if line.startswith(("E   ", "FAILED"))][:20],
    }
