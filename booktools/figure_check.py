"""The figure check as an IPython extension: a kernel that loads it fails every cell that shows a
figure without axis labels, a title or a legend (:func:`dyndl_lite.plotting.check_figure`).

Loaded by the test suite's book build and by ``scripts/run_notebook.py`` through
:func:`kernel_environment`, or by hand in a notebook::

    %load_ext booktools.figure_check

Checked: figures passed to ``plt.show()``, and figures still open at the end of a cell (what the
inline backend displays), before they are shown. A failing figure raises
:class:`~dyndl_lite.plotting.FigureCheckError` in the cell that shows it.
"""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path
from typing import Any

from dyndl_lite.plotting import check_figure

EXTENSION = "booktools.figure_check"
_CHECK_NAME = "_booktools_check_open_figures"
_ROOT = Path(__file__).resolve().parents[1]


def check_open_figures(value: Any = None) -> Any:
    """Check every open pyplot figure; return ``value`` (a cell's displayed value, unchanged)."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        for number in pyplot.get_fignums():
            check_figure(pyplot.figure(number), f"Figure {number}")
    return value


class CheckAtCellEnd(ast.NodeTransformer):
    """Rewrite a cell so that it checks the open figures as its last action.

    A final expression ``x`` becomes ``_booktools_check_open_figures(x)`` (its value is still
    displayed); otherwise the call is appended as a statement.
    """

    def visit_Module(self, node: ast.Module) -> ast.Module:
        call = ast.Name(id=_CHECK_NAME, ctx=ast.Load())
        if node.body and isinstance(node.body[-1], ast.Expr):
            last = node.body[-1]
            last.value = ast.Call(func=call, args=[last.value], keywords=[])
        else:
            node.body.append(ast.Expr(value=ast.Call(func=call, args=[], keywords=[])))
        return ast.fix_missing_locations(node)


def load_ipython_extension(shell: Any) -> None:
    """Check every figure that ``shell`` (an IPython shell) shows; loading twice does nothing more
    (IPython loads an extension once)."""
    import matplotlib.pyplot as pyplot

    original_show = pyplot.show

    def show(*args: Any, **kwargs: Any) -> Any:
        check_open_figures()
        return original_show(*args, **kwargs)

    show.__doc__ = original_show.__doc__
    show.__wrapped__ = original_show
    pyplot.show = show
    shell.user_ns[_CHECK_NAME] = check_open_figures
    shell.user_ns_hidden[_CHECK_NAME] = check_open_figures
    shell.ast_transformers.append(CheckAtCellEnd())


def unload_ipython_extension(shell: Any) -> None:
    """Undo :func:`load_ipython_extension` (``%unload_ext booktools.figure_check``)."""
    import matplotlib.pyplot as pyplot

    pyplot.show = getattr(pyplot.show, "__wrapped__", pyplot.show)
    shell.ast_transformers[:] = [
        t for t in shell.ast_transformers if not isinstance(t, CheckAtCellEnd)
    ]
    shell.user_ns.pop(_CHECK_NAME, None)
    shell.user_ns_hidden.pop(_CHECK_NAME, None)


def kernel_environment(folder: Path, environ: dict[str, str] | None = None) -> dict[str, str]:
    """Environment variables under which every new IPython kernel loads this extension.

    Writes an IPython profile into ``folder`` (``IPYTHONDIR``) whose kernel configuration loads
    the extension, and puts the repository root first on ``PYTHONPATH`` so that the kernel, which
    runs in the notebook's folder, imports ``booktools`` (and this checkout's ``dyndl_lite``).
    Returns ``environ`` (default ``os.environ``) with both set.
    """
    folder = Path(folder)
    profile = folder / "profile_default"
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "ipython_kernel_config.py").write_text(
        f"c.InteractiveShellApp.extensions = [{EXTENSION!r}]\n"
    )
    environ = dict(os.environ if environ is None else environ)
    path = [str(_ROOT), *filter(None, environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**environ, "IPYTHONDIR": str(folder), "PYTHONPATH": os.pathsep.join(path)}
