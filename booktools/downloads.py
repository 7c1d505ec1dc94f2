"""Downloads for readers, written into the built site (``_build/html/downloads/``).

- ``executed-notebooks.zip``: every chapter as executed by the last book build (its jupyter-cache,
  ``_build/.jupyter_cache``), outputs included.
- ``student-notebooks.zip``: every chapter with its solutions removed
  (:func:`booktools.student.student_version`).
- ``dynamic-view-of-deep-learning.pdf``: the whole book as one PDF, made offline: the article of
  every page of ``_toc.yml``, in book order, is put on one HTML page beside the built book
  (``print.html``, same styles and local MathJax), which headless Chromium prints with a bookmark
  per heading.

The two archives are cheap and written at the end of every HTML build (by
``book/_ext/dyndl_html.py``); the PDF takes a browser (``make pdf``, ``scripts/make_downloads.py``).
"""

from __future__ import annotations

import base64
import functools
import http.server
import io
import shutil
import tempfile
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import nbformat

from booktools.layout import ROOT, toc_documents, toc_notebooks
from booktools.student import student_version
from dyndl_lite import atomic

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

DOWNLOADS = "downloads"
EXECUTED_ZIP = "executed-notebooks.zip"
STUDENT_ZIP = "student-notebooks.zip"
PDF_NAME = "dynamic-view-of-deep-learning.pdf"
PRINT_PAGE = "print.html"


def executed_notebook(path: Path, cache_dir: Path, executed_dir: Path) -> nbformat.NotebookNode:
    """The chapter at ``path`` with the outputs of its last execution.

    From the build's jupyter-cache, merged into the current source (myst-nb writes a notebook
    served from the cache to ``jupyter_execute/`` without its outputs); else from ``executed_dir``.

    Raises:
        FileNotFoundError: neither holds an execution of the notebook (its name is in the message).
    """
    source = nbformat.read(path, as_version=4)
    if (Path(cache_dir) / "global.db").exists():
        from jupyter_cache import get_cache

        try:
            return get_cache(cache_dir).merge_match_into_notebook(source)[1]
        except KeyError:
            pass  # not cached: this build executed it without the cache
    executed = Path(executed_dir) / path.relative_to(ROOT)
    if not executed.exists():
        raise FileNotFoundError(
            f"no execution of {path.relative_to(ROOT)} in {cache_dir} or {executed_dir}; "
            "build the book first (make book)"
        )
    return nbformat.read(executed, as_version=4)


def write_notebook_zips(html_dir: Path, cache_dir: Path, executed_dir: Path) -> list[Path]:
    """Write the executed and the student notebooks, each as one zip in ``html_dir/downloads``."""
    target = Path(html_dir) / DOWNLOADS
    target.mkdir(parents=True, exist_ok=True)
    notebooks = toc_notebooks()
    readers: list[tuple[str, Callable[[Path], nbformat.NotebookNode]]] = [
        (EXECUTED_ZIP, lambda path: executed_notebook(path, cache_dir, executed_dir)),
        (STUDENT_ZIP, lambda path: student_version(nbformat.read(path, as_version=4))),
    ]
    written = []
    for name, read in readers:
        with zipfile.ZipFile(target / name, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in notebooks:
                archive.writestr(str(path.relative_to(ROOT)), nbformat.writes(read(path)))
        written.append(target / name)
    return written


def print_page(html_dir: Path) -> Path:
    """Write ``print.html``: the first page's head and the article of every page, in book order.

    Relative links and image sources are rewritten to hold from the site's root, and links between
    pages become links inside the one page.

    Raises:
        ValueError: a page has no ``article.bd-article`` (``html_dir`` is not a built Jupyter Book).
    """
    from bs4 import BeautifulSoup

    html_dir = Path(html_dir)
    pages = toc_documents()
    first = BeautifulSoup((html_dir / f"{pages[0]}.html").read_text(), "html.parser")
    body = first.new_tag("body")
    main = first.new_tag("main", attrs={"class": "bd-main dyndl-print"})
    body.append(main)
    for page in pages:
        soup = BeautifulSoup((html_dir / f"{page}.html").read_text(), "html.parser")
        article = soup.select_one("article.bd-article")
        if article is None:
            raise ValueError(
                f"{page}.html has no article.bd-article: is {html_dir} a built Jupyter Book?"
            )
        base = f"http://book/{page}.html"
        for element in article.select("[src], [href]"):
            attribute = "src" if element.has_attr("src") else "href"
            value = element[attribute]
            if urlsplit(value).scheme or value.startswith("#"):
                continue
            absolute = urlsplit(urljoin(base, value))
            target_page = absolute.path.lstrip("/").removesuffix(".html")
            if attribute == "href" and target_page in pages:
                anchor = absolute.fragment or "page-" + target_page.replace("/", "-")
                element[attribute] = "#" + anchor
            else:
                fragment = f"#{absolute.fragment}" if absolute.fragment else ""
                element[attribute] = absolute.path.lstrip("/") + fragment
        section = first.new_tag(
            "section", attrs={"id": "page-" + page.replace("/", "-"), "class": "dyndl-print-page"}
        )
        section.append(article)
        main.append(section)
    first.body.replace_with(body)
    style = first.new_tag("style")
    style.string = (
        ".dyndl-print-page { break-before: page; }"
        " .dyndl-print-page:first-child { break-before: auto; }"
        " .toggle-hidden { visibility: visible !important; opacity: 1 !important;"
        " height: auto !important; }"
        " button.toggle-button { display: none !important; }"
        " .headerlink, .copybtn { display: none !important; }"
    )
    first.head.append(style)
    # the page sits at the root: the head's own links were relative to the first page
    for element in first.head.select("[src], [href]"):
        attribute = "src" if element.has_attr("src") else "href"
        value = element[attribute]
        if not urlsplit(value).scheme and not value.startswith(("#", "/")):
            absolute = urljoin(f"http://book/{pages[0]}.html", value)
            element[attribute] = urlsplit(absolute).path.lstrip("/")
    out = html_dir / PRINT_PAGE
    out.write_text(str(first))
    return out


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """A static file server that logs nothing."""

    def log_message(self, *args: Any) -> None:
        pass


WAIT_FOR_MATHJAX = """
const done = arguments[arguments.length - 1];
document.querySelectorAll("details").forEach(d => { d.open = true; });
if (!window.MathJax || !MathJax.startup) { done("absent"); return; }
MathJax.startup.promise.then(() => done("rendered")).catch(e => done("error: " + e));
"""


def chromium_driver() -> WebDriver:
    """Headless Chromium (Debian's chromium and chromium-driver) with a fresh profile.

    Raises:
        FileNotFoundError: ``chromium`` or ``chromedriver`` is not on the ``PATH``.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and chromedriver):
        raise FileNotFoundError(
            "chromium and chromedriver are needed "
            "(Debian: apt-get install chromium chromium-driver)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--window-size=1280,1600",
        f"--user-data-dir={tempfile.mkdtemp(prefix='dyndl-pdf-')}",
    ]
    for flag in flags:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    driver.set_script_timeout(300)
    driver.set_page_load_timeout(300)
    return driver


def write_pdf(html_dir: Path, driver: WebDriver | None = None) -> Path:
    """Print ``print.html`` to ``downloads/dynamic-view-of-deep-learning.pdf`` (headless Chromium).

    Args:
        html_dir: the built book (``_build/html``).
        driver: a Chromium WebDriver to use (left open); default a fresh one, closed afterwards.

    Raises:
        RuntimeError: MathJax failed to render the page.
    """
    html_dir = Path(html_dir)
    page = print_page(html_dir)
    handler = functools.partial(QuietHandler, directory=str(html_dir))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    own_driver = driver is None
    driver = driver or chromium_driver()
    try:
        driver.get(f"http://127.0.0.1:{httpd.server_address[1]}/{page.name}")
        state = driver.execute_async_script(WAIT_FOR_MATHJAX)
        if state not in ("rendered", "absent"):
            raise RuntimeError(f"MathJax failed on {page.name}: {state}")
        result = driver.execute_cdp_cmd(
            "Page.printToPDF",
            {
                "printBackground": True,
                "preferCSSPageSize": False,
                "paperWidth": 8.27,
                "paperHeight": 11.69,  # A4, inches
                "generateDocumentOutline": True,
                "generateTaggedPDF": True,
            },
        )
    finally:
        httpd.shutdown()
        if own_driver:
            driver.quit()
    target = html_dir / DOWNLOADS / PDF_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = atomic.temporary_path(target)  # a reader never finds half a PDF
    try:
        temporary.write_bytes(base64.b64decode(result["data"]))
        atomic.commit(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return target


def pdf_outline(data: bytes) -> list[str]:
    """Titles of the top-level bookmarks of a PDF (its outline's first level), read by pypdf.

    Raises:
        ValueError: ``data`` is not a readable PDF, or it has no outline.
    """
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        outline = PdfReader(io.BytesIO(data), strict=True).outline
    except PdfReadError as error:
        raise ValueError(f"not a readable PDF: {error}") from error
    # a nested list holds the children of the bookmark before it
    titles = [item.title for item in outline if not isinstance(item, list)]
    if not titles:
        raise ValueError("the PDF has no outline (bookmarks)")
    return titles
