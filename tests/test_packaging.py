"""pyproject.toml, environment.yml, the lock file and the README agree."""

from __future__ import annotations

import ast
import re
import tomllib

import yaml
from packaging.requirements import Requirement

from conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def pyproject_requirements() -> dict[str, str]:
    project = PYPROJECT["project"]
    names = {}
    for line in project["dependencies"] + project["optional-dependencies"]["book"]:
        requirement = Requirement(line)
        names[requirement.name.lower()] = str(requirement.specifier)
    return names


def environment_requirements() -> dict[str, str]:
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(item["pip"] for item in environment["dependencies"] if isinstance(item, dict))
    names = {}
    for line in pip:
        if line.startswith("-e"):
            continue
        requirement = Requirement(line)
        names[requirement.name.lower()] = str(requirement.specifier)
    return names


def test_environment_yml_lists_the_same_packages_as_pyproject():
    assert environment_requirements() == pyproject_requirements()


def test_lock_file_satisfies_pyproject_ranges():
    pins = {}
    for line in (ROOT / "requirements" / "lock.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split(";")[0].strip().split("==")
            pins[name.lower().replace("_", "-")] = version
    for name, specifier in pyproject_requirements().items():
        key = name.replace("_", "-")
        assert key in pins, f"{name} is not pinned in requirements/lock.txt"
        assert Requirement(f"{name}{specifier}").specifier.contains(pins[key].split("+")[0], prereleases=True), name


def test_package_source_parses_on_the_oldest_promised_python():
    minimum = re.search(r">=\s*3\.(\d+)", PYPROJECT["project"]["requires-python"]).group(1)
    readme = (ROOT / "README.md").read_text()
    assert f"Python 3.{minimum} or newer" in readme, "README and requires-python must promise the same versions"
    for folder in ("dyndl_lite", "tests", "scripts", "bench", "book/_ext"):
        for path in (ROOT / folder).rglob("*.py"):
            ast.parse(path.read_text(), filename=str(path), feature_version=(3, int(minimum)))


def test_requires_python_covers_the_standard_library_the_code_imports():
    """tomllib (tests, scripts) arrived in Python 3.11: requires-python may not promise less."""
    minimum = int(re.search(r">=\s*3\.(\d+)", PYPROJECT["project"]["requires-python"]).group(1))
    newest_module = {"tomllib": 11}
    for folder in ("dyndl_lite", "tests", "scripts", "bench"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module] if isinstance(node, ast.ImportFrom) else []
                for name in names:
                    needed = newest_module.get((name or "").split(".")[0])
                    assert needed is None or minimum >= needed, f"{path.relative_to(ROOT)} imports {name} (Python 3.{needed}+)"
