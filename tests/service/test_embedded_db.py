"""The embedded PostgreSQL `make run` starts: its buffer pool sized to the machine (PostgreSQL's
docs: a quarter of the memory), or to EMBEDDED_PG_SHARED_BUFFERS."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from pydantic import ValidationError

from ragcorp_service.embedded_db import auto_shared_buffers, megabytes
from ragcorp_service.settings import Settings

GIB = 1024**3


@pytest.mark.parametrize(
    ("memory", "expected"),
    [(24 * GIB, "4096MB"), (8 * GIB, "2048MB"), (2 * GIB, "512MB"), (256 * 1024**2, "128MB")],
)
def test_the_buffer_pool_is_a_quarter_of_memory_within_128_mb_and_4_gb(memory: int, expected: str) -> None:
    assert auto_shared_buffers(memory) == expected


def test_sizes_read_as_postgresql_prints_them() -> None:
    assert [megabytes(size) for size in ("4GB", "4096MB", "8192kB", "16384")] == [4096, 4096, 8, 128]


def test_a_size_postgresql_would_not_take_is_refused_by_name() -> None:
    with pytest.raises(ValidationError, match="embedded_pg_shared_buffers"):
        Settings(embedded_pg_shared_buffers="lots")  # type: ignore[call-arg]


def _current(directory: str, shared_buffers: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "API_KEYS")}
    env.update(RAGCORP_DATA_DIR=directory, EMBEDDED_PG_SHARED_BUFFERS=shared_buffers, LOG_LEVEL="INFO")
    command = str(Path(sys.executable).with_name("ragcorp-service"))
    return subprocess.run([command, "db", "current"], env=env, capture_output=True, text=True, timeout=180)


def test_the_embedded_server_runs_with_the_size_asked_and_restarts_only_when_it_changes() -> None:
    """The real server, started by the real command: the size lands in postgresql.auto.conf (a
    restart, once), and the next start with the same size does not restart it again."""
    with tempfile.TemporaryDirectory(prefix="ragcorp-buffers-", dir="/var/tmp") as directory:
        os.chmod(directory, 0o755)  # the embedded server runs as its own user when we are root
        first = _current(directory, "160MB")
        assert first.returncode == 0, first.stderr[-800:]
        assert "restarting the embedded PostgreSQL once for shared_buffers" in first.stderr
        assert "shared_buffers = '160MB'" in (Path(directory) / "pgdata" / "postgresql.auto.conf").read_text()
        again = _current(directory, "160MB")
        assert again.returncode == 0 and "restarting" not in again.stderr
        running = subprocess.run(["pgrep", "-f", f"{directory}/pgdata"], capture_output=True, check=False)
        assert running.returncode == 1, "the restarted server is stopped at exit like the one first started"
