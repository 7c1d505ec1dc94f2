"""The committed form of a chapter notebook.

* the first code cell is the guarded Colab setup, installing the package pinned in ``_config.yml``
  from the repository URL there (inserted, or rewritten when present);
* outputs, execution counts and cell ids are stripped;
* the kernel is ``python3``, the format nbformat 4.4.
"""

from __future__ import annotations

import nbformat

from booktools.layout import colab_install_ref, repository_url

SETUP_TAG = "colab-setup"


def colab_setup_source(url: str | None = None, ref: str | None = None) -> str:
    """The first code cell: in Colab only, ``%pip install`` (output visible) the pinned package.

    Args:
        url: the repository URL; default ``repository.url`` of ``_config.yml``.
        ref: the commit to install; default ``colab.install_ref`` of ``_config.yml``.
    """
    url, ref = url or repository_url(), ref or colab_install_ref()
    return (
        "# Colab setup: in Google Colab, install the version of this book's package\n"
        "# pinned in _config.yml.\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        f'    %pip install "dyndl_lite @ git+{url}@{ref}"'
    )


def normalize(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Put ``notebook`` in its committed form (in place) and return it."""
    setup = nbformat.v4.new_code_cell(colab_setup_source())
    setup.metadata["tags"] = [SETUP_TAG, "hide-cell"]
    code_cells = [c for c in notebook.cells if c.cell_type == "code"]
    if code_cells and SETUP_TAG in code_cells[0].metadata.get("tags", []):
        code_cells[0].source = setup.source
        code_cells[0].metadata["tags"] = setup.metadata["tags"]
    else:
        first_code = next(
            (i for i, c in enumerate(notebook.cells) if c.cell_type == "code"), len(notebook.cells)
        )
        notebook.cells.insert(first_code, setup)
    for cell in notebook.cells:
        cell.pop("id", None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)
    notebook.metadata["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    notebook.metadata["language_info"] = {"name": "python"}
    notebook.metadata.pop("widgets", None)
    notebook.nbformat, notebook.nbformat_minor = 4, 4
    return notebook
