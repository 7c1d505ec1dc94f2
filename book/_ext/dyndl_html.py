"""Small fixes to the HTML of the book, so that a reader's browser shows no errors.

1. MathJax 3 is served from the book itself instead of a CDN. The HTML then renders its mathematics offline and in the browser tests, and
the published book does not depend on a third-party site. MathJax's files come
from the PyPI package ``django-static-mathjax`` (MathJax 3.2.2, no
dependencies) and are copied to ``_static/mathjax/`` at the end of the build.
2. Each inline script is included once: with Jupyter Book 1.0.4, sphinx-thebe
   adds its configuration script twice, and the second ``const THEBE_JS_URL``
   is a JavaScript error in every page.
3. A first visit (empty ``localStorage``) starts in the theme's ``auto`` mode
   instead of an empty mode, which pydata-sphinx-theme reports as an error.
"""

from __future__ import annotations

import shutil
from importlib.util import find_spec
from pathlib import Path

MATHJAX_PATH = "mathjax/tex-chtml.js"  # relative to _static/


def mathjax_source() -> Path:
    spec = find_spec("mathjax")
    if spec is None or spec.origin is None:
        raise RuntimeError("MathJax is not installed: pip install django-static-mathjax (the book's [book] extra).")
    source = Path(spec.origin).parent / "static" / "mathjax" / "es5"
    if not (source / "tex-chtml.js").exists():
        raise RuntimeError(f"{source} does not hold MathJax's tex-chtml.js; reinstall django-static-mathjax.")
    return source


def use_local_mathjax(app, config) -> None:
    mathjax_source()  # fail early with a clear message
    config.mathjax_path = MATHJAX_PATH


def copy_mathjax(app, exception) -> None:
    if exception is None and app.builder.format == "html":
        target = Path(app.outdir) / "_static" / "mathjax"
        if not (target / "tex-chtml.js").exists():
            shutil.copytree(mathjax_source(), target, dirs_exist_ok=True)


DEFAULT_THEME_MODE = 'if (!document.documentElement.dataset.mode) { document.documentElement.dataset.mode = "auto"; }'


def deduplicate_scripts(app, pagename, templatename, context, doctree) -> None:
    seen, unique = set(), []
    for script in context.get("script_files", []):
        # the same inline script is registered once with filename None and once with ""
        key = (getattr(script, "filename", None) or "", tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"][:] = unique  # in place: later handlers add to this same list


def setup(app):
    app.connect("config-inited", use_local_mathjax)
    app.add_js_file(None, body=DEFAULT_THEME_MODE, priority=1)
    app.connect("html-page-context", deduplicate_scripts, priority=100)  # before handlers that return a template
    app.connect("build-finished", copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

