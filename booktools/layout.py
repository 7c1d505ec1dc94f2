"""The book's repository: its root folder, and what ``_config.yml`` and ``_toc.yml`` say.

``_config.yml`` holds the repository URL and the commit that the notebooks' Colab setup cell
installs; ``_toc.yml`` lists the book's documents in reading order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def read_yaml(name: str) -> dict[str, Any]:
    """The YAML file ``ROOT / name`` as a dictionary.

    Raises:
        FileNotFoundError: the file is missing, i.e. the package was not installed from a checkout
            of the book's repository (``pip install -e .`` in the checkout fixes it).
    """
    path = ROOT / name
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: the book's maintenance tools need a checkout of its repository, "
            "with dyndl_lite installed from it (pip install -e .)"
        )
    return yaml.safe_load(path.read_text())


def repository_url() -> str:
    """The repository URL (``repository.url`` in ``_config.yml``), without a trailing slash."""
    return read_yaml("_config.yml")["repository"]["url"].rstrip("/")


def colab_install_ref() -> str:
    """The commit whose dyndl_lite the Colab setup cell installs (``colab.install_ref``)."""
    return str(read_yaml("_config.yml")["colab"]["install_ref"])


def toc_documents() -> list[str]:
    """Every document of ``_toc.yml`` (the root first), without extension, in book order."""
    toc = read_yaml("_toc.yml")
    files: list[str] = [toc["root"]]

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(toc.get("parts", toc.get("chapters", [])))
    return files


def toc_notebooks() -> list[Path]:
    """Every ``.ipynb`` file that ``_toc.yml`` lists, in book order."""
    paths = (ROOT / f"{name}.ipynb" for name in toc_documents())
    return [path for path in paths if path.exists()]
