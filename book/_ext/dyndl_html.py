"""Small fixes to the HTML of the book, so that a reader's browser shows no errors.

1. MathJax 3 is served from the book itself instead of a CDN. The HTML then
   renders its mathematics offline and in the browser tests, and the published
   book does not depend on a third-party site. MathJax's files come from the PyPI
   package ``django-static-mathjax`` (MathJax 3.2.2, no dependencies) and are
   copied to ``_static/mathjax/`` at the end of the build.
2. Each inline script is included once: with Jupyter Book 1.0.4, sphinx-thebe
   adds its configuration script twice, and the second ``const THEBE_JS_URL``
   is a JavaScript error in every page.

3. The executed notebooks and the student notebooks (solutions removed) are
   written as two zip archives into ``downloads/`` at the end of the build
   (:mod:`booktools.downloads`), for the download links of the intro and
   the teaching page; ``make pdf`` adds the whole book as one PDF.

The theme's default mode and its single search box are set in ``_config.yml``
through the themes' documented options (``html_context.default_mode``,
``html_sidebars``), not here.
"""

from __future__ import annotations

import shutil
import sys
from importlib.util import find_spec
from pathlib import Path

# booktools (the repository's tooling, not installed) lives at the repository root
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from booktools.downloads import write_notebook_zips  # noqa: E402

MATHJAX_PATH = "mathjax/tex-chtml.js"  # relative to _static/


def mathjax_source() -> Path:
    spec = find_spec("mathjax")
    if spec is None or spec.origin is None:
        raise RuntimeError(
            "MathJax is not installed: pip install django-static-mathjax "
            "(the book's [book] extra)."
        )
    source = Path(spec.origin).parent / "static" / "mathjax" / "es5"
    if not (source / "tex-chtml.js").exists():
        raise RuntimeError(
            f"{source} does not hold MathJax's tex-chtml.js; "
            "reinstall django-static-mathjax."
        )
    return source


def use_local_mathjax(app, config) -> None:
    mathjax_source()  # fail early with a clear message
    config.mathjax_path = MATHJAX_PATH


def copy_mathjax(app, exception) -> None:
    if exception is None and app.builder.format == "html":
        target = Path(app.outdir) / "_static" / "mathjax"
        if not (target / "tex-chtml.js").exists():
            shutil.copytree(mathjax_source(), target, dirs_exist_ok=True)


def deduplicate_scripts(app, pagename, templatename, context, doctree) -> None:
    seen, unique = set(), []
    for script in context.get("script_files", []):
        # the same inline script is registered once with filename None and once with ""
        key = (
            getattr(script, "filename", None) or "",
            tuple(sorted(getattr(script, "attributes", {}).items())),
        )
        if key not in seen:
            seen.add(key)
            unique.append(script)
    # in place: later handlers add to this same list
    context["script_files"][:] = unique


def write_downloads(app, exception) -> None:
    if exception is not None or app.builder.name != "html":
        return
    build = Path(app.outdir).parent
    cache = Path(app.config.nb_execution_cache_path or build / ".jupyter_cache")
    executed = build / "jupyter_execute"  # myst-nb's output folder
    write_notebook_zips(Path(app.outdir), cache, executed)


def setup(app):
    app.connect("config-inited", use_local_mathjax)
    # before handlers that return a template
    app.connect("html-page-context", deduplicate_scripts, priority=100)
    app.connect("build-finished", copy_mathjax)
    app.connect("build-finished", write_downloads)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
