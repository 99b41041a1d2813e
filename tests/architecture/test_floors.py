"""The floors, read from the source: imports run one way, devchain stays beside the house.

    exex_bridge ← arena ← pathfinder ← executor ← sidecar        devchain (not shipped)

Each rule reads every module's imports with `ast` (function-level imports included), so a
change that breaks a floor fails here, naming the module and the import.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from setuptools import find_namespace_packages

ROOT = Path(__file__).resolve().parents[2]
FLOORS = ("exex_bridge", "arena", "pathfinder", "executor", "sidecar")
BESIDE = "devchain"
ALL_PACKAGES = (*FLOORS, BESIDE)


def modules_of(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imported_packages(path: Path) -> Iterator[tuple[int, str]]:
    """(line, top-level package) for every absolute import of one of ours in `path`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            if top in ALL_PACKAGES or top == "tests":
                yield node.lineno, top


def violations(package: str, allowed: set[str]) -> list[str]:
    found = []
    for path in modules_of(package):
        for line, top in imported_packages(path):
            if top != package and top not in allowed:
                found.append(f"{path.relative_to(ROOT)}:{line} imports {top}")
    return found


@pytest.mark.parametrize("floor", FLOORS)
def test_each_floor_imports_only_the_floors_below(floor: str) -> None:
    below = set(FLOORS[: FLOORS.index(floor)])
    assert violations(floor, below) == []


def test_devchain_may_use_the_house_but_not_the_tests() -> None:
    assert violations(BESIDE, set(FLOORS)) == []


def test_the_rule_sees_a_violation(tmp_path: Path) -> None:
    """The reader itself: an upward import inside a function is found."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from sidecar.cli import main\n    import devchain.anvil\n")
    assert list(imported_packages(module)) == [(2, "sidecar"), (3, "devchain")]


@pytest.mark.parametrize("floor", FLOORS)
def test_no_product_module_is_named_like_a_test(floor: str) -> None:
    named = [str(p.relative_to(ROOT)) for p in modules_of(floor) if p.name.startswith("test_")]
    assert named == []


def test_every_package_is_a_floor_or_beside() -> None:
    """A new top-level package must be placed on a floor (or beside) deliberately."""
    ignored = {"tests", "benchmarks", "scripts", "docs", "grafana", "node_modules", "build"}
    packages = {
        p.parent.name
        for p in ROOT.glob("*/__init__.py")
        if p.parent.name not in ignored and not p.parent.name.startswith(".")
    }
    assert packages == set(ALL_PACKAGES)


def test_the_wheel_ships_the_floors_and_not_devchain() -> None:
    """What setuptools packages, computed from pyproject's own find configuration."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    find = config["tool"]["setuptools"]["packages"]["find"]
    shipped = set(find_namespace_packages(str(ROOT), include=find["include"]))
    tops = {name.split(".")[0] for name in shipped}
    assert tops == set(FLOORS)
    assert config["project"]["scripts"]["arena"] == "sidecar.cli:main"
