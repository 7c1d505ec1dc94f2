"""The Colab path: the setup cell installs a pinned commit that has what the chapters import, and
installing it does not replace the versions Colab ships."""

from __future__ import annotations

import ast
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from booktools.layout import colab_install_ref, repository_url, toc_notebooks
from booktools.normalize import colab_setup_source
from conftest import imported_names

ROOT = Path(__file__).resolve().parents[1]


def git(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *arguments], cwd=ROOT, capture_output=True, text=True)


def test_the_setup_cell_shows_pip_installing_the_pinned_commit():
    ref = colab_install_ref()
    assert len(ref) >= 7 and all(c in "0123456789abcdef" for c in ref), (
        f"install_ref {ref!r} is not a commit hash"
    )
    source = colab_setup_source()
    # output visible, no --quiet
    assert f'%pip install "dyndl_lite @ git+{repository_url()}@{ref}"' in source
    assert "@main" not in source


@pytest.fixture(scope="module")
def pinned() -> str:
    ref = colab_install_ref()
    found = git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if found.returncode:
        pytest.fail(
            f"the Colab pin {ref} is not a commit of this clone; fetch the whole history "
            "(actions/checkout with fetch-depth: 0) or move colab.install_ref in _config.yml"
        )
    assert git("merge-base", "--is-ancestor", found.stdout.strip(), "HEAD").returncode == 0, (
        "pin is not on main"
    )
    return found.stdout.strip()


def source_at(ref: str, module: str) -> str | None:
    base = module.replace(".", "/")
    for path in (f"{base}.py", f"{base}/__init__.py"):
        shown = git("show", f"{ref}:{path}")
        if shown.returncode == 0:
            return shown.stdout
    return None


def top_level_names(source: str) -> set[str]:
    names = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {
                t.id for target in targets for t in ast.walk(target) if isinstance(t, ast.Name)
            }
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    return names


@pytest.mark.parametrize("notebook", toc_notebooks(), ids=lambda p: p.stem)
def test_the_pinned_commit_provides_every_name_the_chapter_imports(notebook, pinned):
    missing = []
    for module, name in sorted(imported_names(notebook)):
        source = source_at(pinned, module)
        if source is None:
            missing.append(module)
        elif (
            name
            and name not in top_level_names(source)
            and source_at(pinned, f"{module}.{name}") is None
        ):
            missing.append(f"{module}.{name}")
    assert not missing, (
        f"Colab installs dyndl_lite at {pinned[:12]}, which lacks {missing}: "
        "move colab.install_ref in _config.yml to a later commit "
        "and run scripts/normalize_notebooks.py"
    )


def test_installing_the_package_keeps_colabs_versions():
    dependencies = {
        Requirement(d).name.lower(): Requirement(d)
        for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    }
    shipped = [
        Requirement(line)
        for line in (ROOT / "requirements" / "colab.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert shipped, "requirements/colab.txt lists no Colab versions"
    for pin in shipped:
        (version,) = [spec.version for spec in pin.specifier]
        wanted = dependencies.get(pin.name.lower())
        assert wanted is None or wanted.specifier.contains(version), (
            f"pyproject.toml asks for {wanted}, "
            f"so installing dyndl_lite in Colab would replace its {pin}"
        )
