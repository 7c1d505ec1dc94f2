"""Put every notebook of the book in its committed form.

* the first code cell is the guarded Colab setup, installing the package from
  the one repository URL in ``_config.yml`` (inserted or rewritten);
* outputs and execution counts are stripped;
* the kernel is ``python3``.

Usage: ``python scripts/normalize_notebooks.py [NOTEBOOK ...]`` (default: every
notebook listed in ``_toc.yml``). ``--check`` only reports notebooks that would change.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
SETUP_TAG = "colab-setup"


def repository_url() -> str:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    return config["repository"]["url"].rstrip("/")


def colab_install_ref() -> str:
    """The commit whose dyndl_lite the Colab setup cell installs (``colab.install_ref`` in ``_config.yml``)."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    return str(config["colab"]["install_ref"])


def colab_setup_source(url: str | None = None, ref: str | None = None) -> str:
    """The first code cell: in Google Colab only, ``%pip install`` (output visible) the pinned dyndl_lite."""
    url, ref = url or repository_url(), ref or colab_install_ref()
    return (
        "# Colab setup: in Google Colab, install the version of this book's package pinned in _config.yml.\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        f'    %pip install "dyndl_lite @ git+{url}@{ref}"'
    )


def toc_documents() -> list[str]:
    """Every document of ``_toc.yml`` (the root first), without extension, in book order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files: list[str] = [toc["root"]]

    def walk(node):
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
    return [ROOT / f"{name}.ipynb" for name in toc_documents() if (ROOT / f"{name}.ipynb").exists()]


def normalize(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    setup = nbformat.v4.new_code_cell(colab_setup_source())
    setup.metadata["tags"] = [SETUP_TAG, "hide-cell"]
    code_cells = [c for c in notebook.cells if c.cell_type == "code"]
    if code_cells and SETUP_TAG in code_cells[0].metadata.get("tags", []):
        code_cells[0].source = setup.source
        code_cells[0].metadata["tags"] = setup.metadata["tags"]
    else:
        first_code = next((i for i, c in enumerate(notebook.cells) if c.cell_type == "code"), len(notebook.cells))
        notebook.cells.insert(first_code, setup)
    for cell in notebook.cells:
        cell.pop("id", None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)
    notebook.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    notebook.metadata["language_info"] = {"name": "python"}
    notebook.metadata.pop("widgets", None)
    notebook.nbformat, notebook.nbformat_minor = 4, 4
    return notebook


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    changed = []
    for path in args.notebooks or toc_notebooks():
        text = path.read_text()
        notebook = normalize(nbformat.reads(text, as_version=4))
        new_text = nbformat.writes(notebook) + "\n"
        if new_text != text:
            changed.append(path)
            if not args.check:
                path.write_text(new_text)
    for path in changed:
        print(("would change " if args.check else "normalized ") + str(path))
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
