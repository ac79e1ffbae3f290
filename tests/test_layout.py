"""The structure the next engineer relies on, checked rather than hoped for: small functions and
modules, no module-level mutable state, and test modules that share helpers only through
`tests.support` (as kopf's tests never import one another)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = (ROOT / "service" / "ragcorp_service", ROOT / "operator" / "ragcorp_operator")
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 500
MUTABLE_LITERALS = (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)
MUTABLE_CALLS = frozenset({"list", "dict", "set", "defaultdict", "deque", "OrderedDict"})


def package_modules() -> Iterator[Path]:
    for package in PACKAGES:
        yield from sorted(package.rglob("*.py"))


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_functions_and_modules_stay_small() -> None:
    too_long = []
    for path in package_modules():
        source = path.read_text()
        if source.count("\n") > MAX_MODULE_LINES:
            too_long.append(f"{relative(path)}: {source.count(chr(10))} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{relative(path)}:{node.lineno} {node.name}: {length} lines")
    assert not too_long, too_long


def _mutable(value: ast.expr) -> bool:
    if isinstance(value, MUTABLE_LITERALS):
        return True
    return isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in MUTABLE_CALLS


def test_no_module_level_mutable_state() -> None:
    """State lives in objects their owners pass around (kopf's memo, the app's state), never in a
    module: a second operator or app in one process (every test) would share it."""
    found = []
    for path in package_modules():
        tree = ast.parse(path.read_text())
        for node in tree.body:
            targets = (
                node.targets
                if isinstance(node, ast.Assign)
                else [node.target]
                if isinstance(node, ast.AnnAssign)
                else []
            )
            value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            if value is not None and _mutable(value) and names != ["__all__"]:
                found.append(f"{relative(path)}:{node.lineno} {', '.join(names)}")
        found += [
            f"{relative(path)}:{n.lineno} global {', '.join(n.names)}"
            for n in ast.walk(tree)
            if isinstance(n, ast.Global)
        ]
    assert not found, found


def modules_of_tests() -> Iterator[Path]:
    for path in sorted((ROOT / "tests").rglob("*.py")):
        if path.name.startswith("test_") or path.name == "conftest.py":
            yield path


def _imported_modules(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def _allowed(path: Path, module: str) -> bool:
    """tests.support for everyone; the real-cluster harness for the e2e tests beside it."""
    if not module.startswith("tests.") or module.startswith("tests.support"):
        return True
    return relative(path).startswith("tests/e2e/") and module.startswith("tests.e2e.cluster.")


@pytest.mark.parametrize("path", list(modules_of_tests()), ids=relative)
def test_test_modules_import_only_the_support_package(path: Path) -> None:
    wrong = [module for module in _imported_modules(path) if not _allowed(path, module)]
    assert not wrong, f"{relative(path)} imports {wrong}: move what is shared to tests/support/"


def test_the_benchmarks_import_and_share_only_the_support_package() -> None:
    """`make bench` is not run by `make test`: a helper moved from under it must fail here, not there."""
    import importlib

    for path in sorted((ROOT / "bench").glob("*.py")):
        wrong = [
            module for module in _imported_modules(path) if module.startswith("tests.") and not _allowed(path, module)
        ]
        assert not wrong, f"{relative(path)} imports {wrong}"
        importlib.import_module(f"bench.{path.stem}")
