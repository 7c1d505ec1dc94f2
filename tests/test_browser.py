"""Open every page of the built book in headless Chromium and check it as a reader would see it."""

from __future__ import annotations

import fcntl
import functools
import http.server
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path

import pytest
import yaml

from booktools import downloads
from booktools.layout import toc_documents, toc_notebooks
from conftest import BUILD, ROOT, book_run_folder

pytestmark = [pytest.mark.book, pytest.mark.browser]

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
SCREENSHOTS = BUILD / "screenshots"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
    "--window-size=1280,1600",
]


def source_text(page: str) -> tuple[str, bool]:
    """Markdown text of a page's source and whether it is a notebook."""
    notebook = ROOT / f"{page}.ipynb"
    if notebook.exists():
        import nbformat

        cells = nbformat.read(notebook, as_version=4).cells
        return "\n".join(c.source for c in cells if c.cell_type == "markdown"), True
    return (ROOT / f"{page}.md").read_text(), False


def directive_count(text: str, pattern: str) -> int:
    return len(re.findall(rf"^\s*(?::::*|```+)\{{{pattern}\}}", text, flags=re.MULTILINE))


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def server(built_book):
    assert built_book.returncode == 0, "the book did not build; see test_book.py"
    handler = functools.partial(QuietHandler, directory=str(built_book.html))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        message = (
            "chromium and chromedriver are needed "
            "(Debian: apt-get install chromium chromium-driver)"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="dyndl-chromium-")
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(60)
    driver.set_page_load_timeout(60)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


# In the scripts below, a backslash at the end of a line joins it to the next (Python drops
# both): long JavaScript lines are split in the source, the browser gets them whole.
WAIT_FOR_MATHJAX = """
const done = arguments[arguments.length - 1];
if (!window.MathJax || !MathJax.startup) { done("absent"); return; }
MathJax.startup.promise.then(() => done("rendered")).catch(e => done("error: " + e));
"""

VISIBLE_PROSE = """
const article = document.querySelector("article.bd-article");
const copy = article.cloneNode(true);
copy.querySelectorAll("pre, code, script, style, mjx-container, .highlight, .cell_output, .output")\
.forEach(e => e.remove());
return copy.innerText;
"""

BROKEN_IMAGES = """
const done = arguments[arguments.length - 1];
const images = Array.from(document.querySelectorAll("article.bd-article img"));
Promise.all(images.map(img => fetch(img.currentSrc || img.src).then(
    r => r.ok && (r.headers.get("content-type") || "").startsWith("image") ? null : img.src,
    () => img.src))).then(bad => done(bad.filter(x => x)));
"""


RENDERED_TEXT = """
const article = document.querySelector("article.bd-article");
const copy = article.cloneNode(true);
copy.querySelectorAll("pre, code, script, style, mjx-container, .highlight, .math")\
.forEach(e => e.remove());
const outputs = Array.from(article.querySelectorAll(".cell_output pre, .output pre"))\
.map(e => e.textContent);
return {text: copy.innerText, outputs: outputs};
"""

# Open every dropdown (hidden solutions, collapsed outputs) so that what a
# reader can unfold is measured too; then list every element of the main
# column that scrolls sideways or reaches past the column's edges.
SIDEWAYS = """
const article = document.querySelector("article.bd-article");
article.querySelectorAll("details").forEach(d => { d.open = true; });
article.querySelectorAll(".toggle-hidden").forEach(e => e.classList.remove("toggle-hidden"));
const box = article.getBoundingClientRect();
const bad = [];
const describe = (el, why) => {
    const name = el.tagName.toLowerCase() + (el.className && typeof el.className === "string" \
? "." + el.className.trim().split(/\\s+/).join(".") : "");
    return `${name} (${why}): ${(el.textContent || "").trim().replace(/\\s+/g, " ").slice(0, 90)}`;
};
for (const el of article.querySelectorAll("*")) {
    if (bad.some(b => b.el.contains(el))) continue;  // report the outermost offender only
    if (el.closest("mjx-assistive-mml")) continue;  \
// MathJax's copy for screen readers, clipped to nothing
    const style = getComputedStyle(el);
    const rect = el.getBoundingClientRect();
    if (style.display === "none" || style.visibility === "hidden" \
|| rect.width === 0 || rect.height === 0) continue;
    if (["auto", "scroll"].includes(style.overflowX) && el.scrollWidth > el.clientWidth + 1) {
        bad.push({el: el, \
text: describe(el, `scrolls: ${el.scrollWidth} px in ${el.clientWidth} px`)});
    } else if (rect.right > box.right + 1 || rect.left < box.left - 1) {
        bad.push({el: el, \
text: describe(el, `reaches ${Math.round(rect.left - box.left)}\
..${Math.round(rect.right - box.left)} px of a ${Math.round(box.width)} px column`)});
    }
}
const page = document.documentElement;
const result = bad.map(b => b.text);
if (page.scrollWidth > page.clientWidth + 1) \
result.push(`the page scrolls sideways: ${page.scrollWidth} px in ${page.clientWidth} px`);
return result;
"""

# Markdown that a renderer should have turned into HTML: a pipe table's
# delimiter row, bold, inline code, links, headings, MyST roles and fences.
PIPE_TABLE_ROW = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)+\|?\s*$", re.MULTILINE)
RAW_MARKDOWN = {
    "pipe table": PIPE_TABLE_ROW,
    "pipe-table row": re.compile(r"^\s*\|[^|\n]+\|[^|\n]+\|", re.MULTILINE),
    "bold": re.compile(r"\*\*[^*\n]+\*\*"),
    "inline code": re.compile(r"`[^`\n]+`"),
    "link": re.compile(r"\]\((?:https?:|\.|/|#)[^)\s]*\)"),
    "heading": re.compile(r"^#{1,6} \S", re.MULTILINE),
    "MyST role or directive": re.compile(r"\{[a-z][\w:-]*\}`|^(?::{3,}|`{3,})", re.MULTILINE),
}


def raw_markdown(text: str) -> list[str]:
    """Names and first occurrences of raw Markdown constructs in rendered text."""
    return [
        f"{name}: {m.group(0).strip()!r}"
        for name, pattern in RAW_MARKDOWN.items()
        if (m := pattern.search(text))
    ]


def test_raw_markdown_detector_knows_a_pipe_table():
    table = "| model | s=50 |\n|---|---|\n| ODE-Net | 93.1 |"
    assert raw_markdown(table) and PIPE_TABLE_ROW.search(table)
    assert raw_markdown("see **this** and `code` and [x](https://a.b)") and raw_markdown(
        "## Results"
    )
    assert raw_markdown("The ODE-Net is more robust (93.1% against 87.0%); see chapter 5.") == []


@pytest.mark.parametrize("page", toc_documents())
def test_page_has_no_raw_markdown_and_no_sideways_scrolling(browser, server, page):
    """At 1280 pixels nothing in the main column is wider than the column, and Markdown is
    rendered."""
    browser.get(f"{server}/{page}.html")
    assert browser.execute_async_script(WAIT_FOR_MATHJAX) in ("rendered", "absent")
    rendered = browser.execute_script(RENDERED_TEXT)
    found = raw_markdown(rendered["text"])
    assert not found, f"{page}: raw Markdown in the rendered page: {found}"
    tables = [o[:200] for o in rendered["outputs"] if PIPE_TABLE_ROW.search(o)]
    assert not tables, f"{page}: a cell output is a raw pipe table: {tables}"
    wide = browser.execute_script(SIDEWAYS)
    assert not wide, (
        f"{page}: wider than the main column at {browser.get_window_size()['width']} px:\n"
        + "\n".join(wide)
    )


DOWNLOAD_PAGES = ["book/intro", "book/teaching"]
DOWNLOAD_LINKS = """
const done = arguments[arguments.length - 1];
const links = Array.from(document.querySelectorAll("article.bd-article a.dyndl-download"))\
.map(a => a.href);
Promise.all(links.map(href => fetch(href).then(r => [href, r.status], () => [href, 0]))).then(done);
"""


@pytest.fixture(scope="module")
def book_pdf(built_book, browser, pytestconfig):
    """The whole book as one PDF, printed by this same headless Chromium (what ``make pdf``
    does), once per test run: a second pytest-xdist worker waits for the first's."""
    folder = book_run_folder(pytestconfig)
    with open(folder / "pdf.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        printed = folder / "pdf.printed"
        if not printed.exists():
            printed.write_text(str(downloads.write_pdf(built_book.html, driver=browser)))
        return Path(printed.read_text())


@pytest.mark.parametrize("page", DOWNLOAD_PAGES)
def test_downloads_are_linked_and_resolve(browser, server, book_pdf, page):
    """The intro and the teaching page link the PDF and both notebook archives, and each link
    loads."""
    browser.get(f"{server}/{page}.html")
    links = dict(browser.execute_async_script(DOWNLOAD_LINKS))
    names = {href.rsplit("/", 1)[-1] for href in links}
    assert names == {downloads.PDF_NAME, downloads.EXECUTED_ZIP, downloads.STUDENT_ZIP}, (
        f"{page}: {names}"
    )
    assert all(status == 200 for status in links.values()), (
        f"{page}: downloads that do not load: {links}"
    )


def test_notebook_archives_hold_every_chapter(built_book):
    import zipfile

    import nbformat

    chapters = [str(p.relative_to(ROOT)) for p in toc_notebooks()]
    folder = built_book.html / downloads.DOWNLOADS
    with zipfile.ZipFile(folder / downloads.EXECUTED_ZIP) as archive:
        assert sorted(archive.namelist()) == sorted(chapters)
        for name in chapters:
            notebook = nbformat.reads(archive.read(name).decode(), as_version=4)
            assert any(c.get("outputs") for c in notebook.cells if c.cell_type == "code"), (
                f"{name}: executed without outputs"
            )
    with zipfile.ZipFile(folder / downloads.STUDENT_ZIP) as archive:
        assert sorted(archive.namelist()) == sorted(chapters)
        for name in chapters:
            text = "\n".join(
                c.source for c in nbformat.reads(archive.read(name).decode(), as_version=4).cells
            )
            source = "\n".join(c.source for c in nbformat.read(ROOT / name, as_version=4).cells)
            assert (
                "{solution" not in text and text.count("{exercise") == source.count("{exercise") > 0
            ), name


def test_pdf_has_one_top_level_bookmark_per_page(book_pdf):
    """The whole book as one complete PDF, with one top-level bookmark (chapter) per page of
    _toc.yml."""
    titles = downloads.pdf_outline(book_pdf.read_bytes())
    pages = toc_documents()
    assert len(titles) == len(pages), (
        f"{len(titles)} top-level bookmarks for {len(pages)} pages: {titles}"
    )
    from bs4 import BeautifulSoup

    for page, title in zip(pages, titles):
        heading = BeautifulSoup(
            (book_pdf.parents[1] / f"{page}.html").read_text(), "html.parser"
        ).select_one("article.bd-article h1")
        for hidden in heading.select(".headerlink, .section-number"):
            hidden.decompose()
        # Chromium joins a heading's wrapped lines without their space: compare without whitespace
        assert "".join(heading.get_text().split()) in "".join(title.split()), (
            f"bookmark {title!r} is not {page}"
        )


SEARCH_BOXES = """
return Array.from(\
document.querySelectorAll("button.search-button, button.search-button-field, input[type=search]"))
    .filter(e => e.getBoundingClientRect().width > 0 \
&& getComputedStyle(e).visibility !== "hidden").length;
"""


def test_one_search_box_and_the_configured_default_mode(browser, server):
    """One visible search entry (the header's button), and a first visit starts in _config.yml's
    default mode."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    mode = config["sphinx"]["config"]["html_context"]["default_mode"]
    browser.get(f"{server}/{toc_documents()[1]}.html")
    browser.execute_script("localStorage.clear();")
    browser.refresh()
    assert browser.execute_script(SEARCH_BOXES) == 1
    assert browser.execute_script("return document.documentElement.dataset.mode") == mode


def colab_link(page: str) -> str:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repository = config["repository"]["url"].removeprefix("https://github.com/").rstrip("/")
    branch = config["repository"].get("branch", "main")
    return f"https://colab.research.google.com/github/{repository}/blob/{branch}/{page}.ipynb"


@pytest.mark.parametrize("page", toc_documents())
def test_page_as_a_reader_sees_it(browser, server, page):
    from selenium.webdriver.common.by import By

    browser.get_log("browser")  # drop messages of earlier pages
    browser.get(f"{server}/{page}.html")
    assert browser.execute_script("return document.readyState") == "complete"
    title = browser.find_element(By.CSS_SELECTOR, "article.bd-article h1").text
    assert title, f"{page}: no visible title"

    source, is_notebook = source_text(page)
    has_math = bool(re.search(r"\$|\\\(|\{math\}", source))
    state = browser.execute_async_script(WAIT_FOR_MATHJAX)
    if has_math:
        assert state == "rendered", f"{page}: MathJax {state}"
        assert browser.find_elements(By.CSS_SELECTOR, "mjx-container"), (
            f"{page}: no rendered formula"
        )
    prose = browser.execute_script(VISIBLE_PROSE)
    for raw in ("$$", "\\(", "\\[", "\\begin{"):
        assert raw not in prose, f"{page}: raw math {raw!r} left in the visible text"

    assert browser.execute_async_script(BROKEN_IMAGES) == [], f"{page}: images that do not load"

    for pattern, selector in [
        (r"prf:\w+", "div.proof"),
        ("exercise", "div.exercise"),
        ("solution", "div.solution"),
    ]:
        expected = directive_count(source, pattern)
        found = len(browser.find_elements(By.CSS_SELECTOR, selector))
        assert found >= expected, (
            f"{page}: {expected} {pattern} blocks in the source, {found} on the page"
        )

    if is_notebook:
        hrefs = [
            a.get_attribute("href")
            for a in browser.find_elements(By.CSS_SELECTOR, "a[href*='colab.research.google.com']")
        ]
        assert colab_link(page) in hrefs, (
            f"{page}: Colab button should open {colab_link(page)}, found {hrefs}"
        )

    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, f"{page}: console errors {errors}"
    browser.save_screenshot(str(SCREENSHOTS / (page.replace("/", "__") + ".png")))
