"""pyproject.toml declares every third-party package the code imports, in a range the code works with."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions, version
from pathlib import Path

import tomllib
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _imported_top_level_modules() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "app").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m != "app" and not m.startswith("_")}


def _declared() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = [Requirement(r) for r in project["dependencies"]]
    return {re.sub(r"[-_.]+", "-", r.name).lower(): r for r in requirements}


def test_every_directly_imported_package_is_declared() -> None:
    declared = _declared()
    owners = packages_distributions()
    missing = []
    for module in sorted(_imported_top_level_modules()):
        dists = {re.sub(r"[-_.]+", "-", d).lower() for d in owners.get(module, [])}
        assert dists, f"{module} is imported but not installed"
        if not dists & declared.keys():
            missing.append(f"{module} (from {', '.join(sorted(dists))})")
    assert not missing, f"imported but not in [project] dependencies: {missing}"


def test_installed_versions_satisfy_the_declared_ranges() -> None:
    for name, requirement in _declared().items():
        assert requirement.specifier.contains(version(name), prereleases=True), (name, version(name))


def test_huggingface_hub_range_excludes_1x_which_has_no_httpx2() -> None:
    spec = _declared()["huggingface-hub"].specifier
    assert not spec.contains("1.33.0") and spec.contains("2.0.0") and not spec.contains("3.0.0")
