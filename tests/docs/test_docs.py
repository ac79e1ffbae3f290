"""The README and `docs/` name only things that exist: settings, make targets, commands and their
flags, HTTP routes, CRD fields, and links. A rename that leaves a page behind fails here."""

from __future__ import annotations

import argparse
import re
from functools import cache
from pathlib import Path

import pytest
import yaml

from ragcorp_service.settings import Settings
from tests.support.corpus import HANDBOOK_ANSWERS

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CODE_SUFFIXES = {".py", ".sh", ".yaml", ".yml", ".toml", ".json", ".tpl", ".txt", ".cfg", ".ini"}


def page_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def code_spans(text: str) -> list[str]:
    """Inline `code` and the lines of fenced blocks."""
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.DOTALL))
    for block in re.findall(r"```[^\n]*\n(.*?)```", text, flags=re.DOTALL):
        spans.extend(block.splitlines())
    return spans


@cache
def source_text() -> str:
    """Everything but the docs: code, manifests, the Makefile, example files."""
    parts = [(ROOT / "Makefile").read_text(), (ROOT / ".env.example").read_text()]
    for folder in ("service", "operator", "migrations", "bench", "tests", "charts", "crds", "infra", ".ci"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and (path.suffix in CODE_SUFFIXES or path.name == "run") and "docs" not in path.parts:
                parts.append(path.read_text(errors="replace"))
    return "\n".join(parts)


def test_every_page_is_reachable_from_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for page in PAGES[1:]:
        assert f"(docs/{page.name})" in readme, page.name


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^a-z0-9 -]", "", text).replace(" ", "-")


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_links_resolve(page: Path) -> None:
    text = page.read_text()
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (page.parent / file_part).resolve() if file_part else page
        assert linked.exists(), f"{page_id(page)}: {target}"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", linked.read_text(), flags=re.MULTILINE)
            assert anchor in {_slug(h) for h in headings}, f"{page_id(page)}: {target}"


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_environment_variables_named_exist(page: Path) -> None:
    names = {
        name
        for span in code_spans(page.read_text())
        for name in re.findall(r"(?<![A-Za-z0-9_$/.-])([A-Z][A-Z0-9]*_[A-Z0-9_]+)(?==|\b)", span)
    }
    missing = sorted(name for name in names if name not in source_text())
    assert not missing, f"{page_id(page)} names what no code reads: {missing}"


def test_the_configuration_page_documents_every_setting() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", text))
    fields = {name.upper() for name in Settings.model_fields}
    assert fields <= documented, sorted(fields - documented)
    table = {m for row in re.findall(r"^\| (`.+?) \|", text, flags=re.MULTILINE) for m in re.findall(r"`(\w+)`", row)}
    assert table <= fields, sorted(table - fields)


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_make_targets_named_exist(page: Path) -> None:
    targets = set(re.findall(r"^([A-Za-z][\w-]*):", (ROOT / "Makefile").read_text(), flags=re.MULTILINE))
    named = {t for span in code_spans(page.read_text()) for t in re.findall(r"(?:^|\s)make ([a-z][\w-]*)", span)}
    assert named <= targets, f"{page_id(page)}: {sorted(named - targets)}"


def _parsers() -> dict[str, argparse.ArgumentParser]:
    from ragcorp_operator import cli as operator_cli
    from ragcorp_operator import kubectl_plugin
    from ragcorp_service import cli as service_cli
    from ragcorp_service.client import cli as client_cli

    return {
        "ragcorp": client_cli.build_parser(),
        "ragcorp-service": service_cli.build_parser(),
        "ragcorp-operator": operator_cli.build_parser(),
        "kubectl ragcorp": kubectl_plugin.build_parser(),
    }


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {flag for action in parser._actions for flag in action.option_strings}


# A program at the start of a code span or line (after a prompt or `.venv/bin/`): prose such as
# `helm install ragcorp-operator ...` names a release, not the program.
COMMAND = re.compile(
    r"^\s*(?:\$ )?(?:\.venv/bin/)?(kubectl ragcorp|ragcorp-service|ragcorp-operator|ragcorp)((?: [^\s#|`]+)*)"
)


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_commands_and_flags_named_exist(page: Path) -> None:
    parsers = _parsers()
    problems = []
    for span in code_spans(page.read_text()):
        for program, rest in COMMAND.findall(span.split("#")[0]):
            words = rest.split()
            parser = parsers[program]
            allowed = _options(parser)
            while words and not words[0].startswith("-") and _subcommands(parser):
                if words[0] not in _subcommands(parser):
                    if words[0].isupper() or words[0].startswith(("[", "<", "$", "'", '"', "...")):
                        break  # a placeholder: `ragcorp-service db upgrade [REV]`
                    problems.append(f"{program} {words[0]}")
                    break
                parser = _subcommands(parser)[words.pop(0)]
                allowed |= _options(parser)
            for flag in re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", " ".join(words)):
                if flag not in allowed:
                    problems.append(f"{program} ... {flag}")
    assert not problems, f"{page_id(page)}: {problems}"


@cache
def _routes() -> set[tuple[str, str]]:
    """Every operation in the app's OpenAPI schema, ids written `{id}`."""
    from ragcorp_service.app.main import create_app

    app = create_app(Settings(database_url="postgresql://docs@127.0.0.1/none", api_keys="k:ask"))
    return {
        (method.upper(), re.sub(r"\{\w+\}", "{id}", path))
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_http_routes_named_exist(page: Path) -> None:
    named = {
        (method, re.sub(r"\{\w+\}", "{id}", path.split("?")[0]))
        for method, path in re.findall(r"\b(GET|POST|PATCH|PUT|DELETE) (/[\w/{}.-]*(?:\?[\w=&]+)?)", page.read_text())
    }
    assert named <= _routes(), f"{page_id(page)}: {sorted(named - _routes())}"


def test_the_api_page_lists_every_route() -> None:
    text = (ROOT / "docs" / "api.md").read_text()
    for method, path in _routes():
        assert f"`{method} {path}" in text, (method, path)


@cache
def _crd_spec() -> dict[str, object]:
    crd = yaml.safe_load((ROOT / "crds" / "ragcorpdeployments.ragcorp.dev.yaml").read_text())
    spec: dict[str, object] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return spec


def _has_path(schema: dict[str, object], parts: list[str]) -> bool:
    for part in parts:
        properties = schema.get("properties")
        if not isinstance(properties, dict) or part not in properties:
            return False
        schema = properties[part]
    return True


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_crd_fields_named_exist(page: Path) -> None:
    top = set(_crd_spec()["properties"])  # type: ignore[arg-type]
    problems = []
    for span in code_spans(page.read_text()):
        for token in re.findall(r"(?<![\w./-])((?:spec\.)?[a-z][A-Za-z]*(?:\.[a-z][A-Za-z]*)+)(?![\w/(-])", span):
            # Dotted names are CRD fields on the operator's page; elsewhere only when written `spec.x`.
            if page.name != "operator.md" and not token.startswith("spec."):
                continue
            parts = token.removeprefix("spec.").split(".")
            if parts[0] in top and not _has_path(_crd_spec(), parts):
                problems.append(token)
    assert not problems, f"{page_id(page)}: {problems}"


def test_the_readme_asks_only_questions_the_handbook_test_answers() -> None:
    """ "Try it" works as written: its questions are the ones a test asks the example handbook."""
    asked = re.findall(r'ragcorp ask "([^"]+)"', (ROOT / "README.md").read_text())
    assert asked and set(asked) <= set(HANDBOOK_ANSWERS), asked
    assert "ragcorp ingest examples/docs" in (ROOT / "README.md").read_text()


def _map_bullets() -> list[str]:
    """The bullets of development.md's "A map of the tree", each joined onto one line."""
    text = (ROOT / "docs" / "development.md").read_text()
    section = text.split("## A map of the tree", 1)[1].split("\n## ", 1)[0]
    return [" ".join(b.split()) for b in re.split(r"\n- ", section)[1:]]


def test_the_map_of_the_tree_names_every_module_where_it_lives() -> None:
    """A newcomer finds each module under its directory's bullet, and no bullet names one that is gone."""
    bullets = _map_bullets()
    missing, gone = [], []
    for package in ("service/ragcorp_service", "operator/ragcorp_operator"):
        for module in sorted((ROOT / package).rglob("*.py")):
            if module.name == "__init__.py":
                continue
            directory = str(module.parent.relative_to(ROOT)) + "/"
            if not any(b.startswith(f"`{directory}`") and f"`{module.name}`" in b for b in bullets):
                missing.append(str(module.relative_to(ROOT)))
    for bullet in bullets:
        directory = code_spans(bullet)[0]
        for name in code_spans(bullet):
            if name.endswith(".py") and "/" not in name and not (ROOT / directory / name).exists():
                gone.append(f"{directory}{name}")
    assert not missing, f"not in the map: {missing}"
    assert not gone, f"in the map but not in the tree: {gone}"
