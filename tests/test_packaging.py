"""pyproject.toml, environment.yml, the lock file and the README agree."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from setuptools import find_namespace_packages

from booktools.layout import toc_notebooks
from conftest import ROOT, imported_names

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
        assert Requirement(f"{name}{specifier}").specifier.contains(
            pins[key].split("+")[0], prereleases=True
        ), name


def test_cpu_lock_pins_what_the_lock_pins_less_the_cuda_runtime():
    """requirements/lock-cpu.txt (the GitHub workflow's) installs the same versions as lock.txt,
    torch's CPU build instead of the CUDA one: regenerate both with `make lock`."""

    def pins(name: str) -> dict[str, str]:
        lines = (ROOT / "requirements" / name).read_text().splitlines()
        return dict(line.split(";")[0].strip().split("==") for line in lines if "==" in line)

    full, cpu = pins("lock.txt"), pins("lock-cpu.txt")
    cuda = {name for name in full if re.match(r"(nvidia-|triton|cuda-)", name)}
    assert "torch" in cpu and cuda and cpu == {k: v for k, v in full.items() if k not in cuda}
    assert re.search(
        r"^--extra-index-url \S+/whl/cpu$",
        (ROOT / "requirements" / "lock-cpu.txt").read_text(),
        re.M,
    )


def test_package_source_parses_on_the_oldest_promised_python():
    minimum = re.search(r">=\s*3\.(\d+)", PYPROJECT["project"]["requires-python"]).group(1)
    readme = (ROOT / "README.md").read_text()
    assert f"Python 3.{minimum} or newer" in readme, (
        "README and requires-python must promise the same versions"
    )
    for folder in ("dyndl_lite", "booktools", "tests", "scripts", "bench", "book/_ext"):
        for path in (ROOT / folder).rglob("*.py"):
            ast.parse(path.read_text(), filename=str(path), feature_version=(3, int(minimum)))


def test_requires_python_covers_the_standard_library_the_code_imports():
    """tomllib (tests, scripts) arrived in Python 3.11: requires-python may not promise less."""
    minimum = int(re.search(r">=\s*3\.(\d+)", PYPROJECT["project"]["requires-python"]).group(1))
    newest_module = {"tomllib": 11}
    for folder in ("dyndl_lite", "booktools", "tests", "scripts", "bench"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module]
                    if isinstance(node, ast.ImportFrom)
                    else []
                )
                for name in names:
                    needed = newest_module.get((name or "").split(".")[0])
                    assert needed is None or minimum >= needed, (
                        f"{path.relative_to(ROOT)} imports {name} (Python 3.{needed}+)"
                    )


def test_api_page_documents_every_public_module():
    """Every module of dyndl_lite (but the command line), and every subpackage that defines
    functions of its own, has its automodule on the API appendix."""
    page = (ROOT / "book" / "appendix" / "api.md").read_text()
    documented = set(
        re.findall(r"^\.\. automodule:: (dyndl_lite[\w.]*)$", page, flags=re.MULTILINE)
    )
    modules = set()
    for path in (ROOT / "dyndl_lite").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if (
            path.name == "__init__.py"
            and len(parts) > 2
            and re.search(r"^def ", path.read_text(), re.MULTILINE)
        ):
            # a subpackage with an API of its own, e.g. dyndl_lite.experiments.registry
            parts = parts[:-1]
        elif path.name in ("__init__.py", "__main__.py"):
            continue
        if any(p.startswith("_") for p in parts):
            continue
        modules.add(".".join(parts))
    assert modules - documented == set(), (
        f"modules missing on book/appendix/api.md: {sorted(modules - documented)}"
    )
    assert documented - modules == set(), (
        f"api.md documents modules that do not exist: {sorted(documented - modules)}"
    )
    for module in sorted(documented):
        heading = page.index(f"### `{module}`")
        assert page.index(f".. automodule:: {module}\n") - heading > len(module) + 40, (
            f"{module}: introduce it in a sentence"
        )


def chapter_imports() -> dict[int, set[str]]:
    """Per chapter number, the dyndl_lite modules its code cells import or import from
    (:func:`conftest.imported_names`: ``from dyndl_lite.models import yan`` counts as
    ``dyndl_lite.models`` and ``dyndl_lite.models.yan``)."""
    imported = {}
    for path in toc_notebooks():
        if path.name[:2].isdigit():
            pairs = imported_names(path)
            imported[int(path.name[:2])] = {m for m, _ in pairs} | {f"{m}.{n}" for m, n in pairs}
    return imported


def named_chapters(sentence: str) -> set[int]:
    """The chapter numbers a sentence names: "chapter 5", "chapters 1 to 3", "chapters 2 and 7"."""
    numbers = set()
    for group in re.findall(r"chapters? (\d+(?:(?:, | and | to )\d+)*)", sentence):
        for part in group.replace(" and ", ", ").split(", "):
            first, _, last = part.partition(" to ")
            numbers.update(range(int(first), int(last or first) + 1))
    return numbers


def test_named_chapters():
    assert named_chapters("chapter 5's toy (chapters 2, 3 and 7)") == {2, 3, 5, 7}
    assert named_chapters("chapters 1 to 3 integrate") == {1, 2, 3}
    assert named_chapters("every chapter's cell, Part II") == set()


def test_api_page_names_only_chapters_that_use_the_module():
    """A module's introduction on the API appendix names the chapters that import it: a chapter
    named there that does not import the module is a stale pointer for the reader."""
    page = (ROOT / "book" / "appendix" / "api.md").read_text()
    imported = chapter_imports()
    stale = []
    for module, intro in re.findall(r"^### `([\w.]+)`\n\n(.+)$", page, flags=re.MULTILINE):
        stale += [
            f"{module}: chapter {n}"
            for n in sorted(named_chapters(intro))
            if module not in imported.get(n, set())
        ]
    assert not stale, f"book/appendix/api.md names chapters that do not import the module: {stale}"


def wheel_files() -> list[Path]:
    """The files the wheel installs, read from pyproject.toml as setuptools reads it: the modules
    of every package ``[tool.setuptools.packages.find]`` finds, and its ``package-data`` globs."""
    setuptools = PYPROJECT["tool"]["setuptools"]
    packages = find_namespace_packages(where=ROOT, **setuptools["packages"]["find"])
    files = set()
    for package in packages:
        folder = ROOT / package.replace(".", "/")
        files.update(folder.glob("*.py"))
        for pattern in setuptools.get("package-data", {}).get(package, []):
            files.update(path for path in folder.glob(pattern) if path.is_file())
    return sorted(files)


def test_the_installed_package_is_under_25_megabytes():
    """Every Colab reader installs it: weights and the records the chapters read, nothing more
    (issue 29: it weighed 111 MB with raw training traces in the chapter-10 records)."""
    files = wheel_files()
    assert ROOT / "dyndl_lite" / "__init__.py" in files
    assert any(path.suffix == ".safetensors" for path in files), "the weights are part of it"
    total = sum(path.stat().st_size for path in files)
    largest = sorted(files, key=lambda path: -path.stat().st_size)[:5]
    assert total < 25_000_000, f"the package weighs {total / 1e6:.1f} MB; largest: " + ", ".join(
        f"{p.relative_to(ROOT)} {p.stat().st_size / 1e6:.1f} MB" for p in largest
    )


def test_the_wheel_holds_no_tooling():
    assert all(path.is_relative_to(ROOT / "dyndl_lite") for path in wheel_files())


TOOLING = ("booktools", "bench", "yaml", "nbformat", "nbclient", "selenium", "jupyter_cache")
TOOLING += ("bs4", "pypdf", "sphinx", "pytest")


def test_importing_the_package_imports_no_tooling():
    """``import dyndl_lite`` and every one of its modules (in a fresh interpreter) loads none of
    the book's tooling or its dependencies: the wheel needs only its declared dependencies."""
    code = (
        "import importlib, pkgutil, sys\n"
        "import dyndl_lite\n"
        "for m in pkgutil.walk_packages(dyndl_lite.__path__, 'dyndl_lite.'):\n"
        "    if m.name != 'dyndl_lite.__main__':\n"
        "        importlib.import_module(m.name)\n"
        "print(' '.join(sorted({name.split('.')[0] for name in sys.modules})))\n"
    )
    process = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = set(process.stdout.split())
    assert "dyndl_lite" in loaded and "torch" in loaded
    assert loaded.isdisjoint(TOOLING), sorted(loaded & set(TOOLING))


def test_contributing_map_names_every_module_of_the_package():
    text = (ROOT / "CONTRIBUTING.md").read_text()
    architecture = text.split("## The architecture on one screen")[1].split("```")[1]
    named = set(re.findall(r"[a-z_]+", architecture))
    package = ROOT / "dyndl_lite"
    modules = {p.stem for p in package.rglob("*.py") if not p.stem.startswith("_")}
    assert sorted(modules - named) == []


def test_the_dependencies_left_out_of_the_lock_are_imported_nowhere():
    """``make`` installs the lock with ``--no-deps``, without mlxtend's dependencies that nothing
    here uses (``scripts/freeze_lock.py``, ``UNUSED``): a module, test or chapter that imports one
    would fail on a fresh install."""
    import nbformat
    from IPython.core.inputtransformer2 import TransformerManager

    sys.path.insert(0, str(ROOT / "scripts"))
    from freeze_lock import UNUSED

    # distribution -> the module it installs
    modules_of = {"scikit-learn": "sklearn", "pandas": "pandas", "joblib": "joblib"}
    modules_of["threadpoolctl"] = "threadpoolctl"
    assert all(UNUSED.match(f"{name}==1.0") for name in modules_of)
    left_out = set(modules_of.values())
    sources = {
        path: path.read_text()
        for folder in ("dyndl_lite", "booktools", "bench", "scripts", "tests", "book")
        for path in (ROOT / folder).rglob("*.py")
    }
    for path in (ROOT / "book").rglob("*.ipynb"):
        cells = nbformat.read(path, as_version=4).cells
        sources[path] = "\n".join(
            TransformerManager().transform_cell(c.source) for c in cells if c.cell_type == "code"
        )
    for path, source in sources.items():
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module or ""]
            else:
                continue
            used = {m.split(".")[0] for m in modules} & left_out
            assert not used, f"{path.relative_to(ROOT)} imports {used}, which the lock leaves out"
