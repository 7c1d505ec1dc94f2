"""Open every page of the built book in headless Chromium and check it as a reader would see it."""

from __future__ import annotations

import http.server
import functools
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path

import pytest
import yaml

from conftest import BUILD, ROOT
from normalize_notebooks import toc_documents

pytestmark = [pytest.mark.book, pytest.mark.browser]

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
SCREENSHOTS = BUILD / "screenshots"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic",
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
        message = "chromium and chromedriver are needed (Debian: apt-get install chromium chromium-driver)"
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


WAIT_FOR_MATHJAX = """
const done = arguments[arguments.length - 1];
if (!window.MathJax || !MathJax.startup) { done("absent"); return; }
MathJax.startup.promise.then(() => done("rendered")).catch(e => done("error: " + e));
"""

VISIBLE_PROSE = """
const article = document.querySelector("article.bd-article");
const copy = article.cloneNode(true);
copy.querySelectorAll("pre, code, script, style, mjx-container, .highlight, .cell_output, .output").forEach(e => e.remove());
return copy.innerText;
"""

BROKEN_IMAGES = """
const done = arguments[arguments.length - 1];
const images = Array.from(document.querySelectorAll("article.bd-article img"));
Promise.all(images.map(img => fetch(img.currentSrc || img.src).then(
    r => r.ok && (r.headers.get("content-type") || "").startsWith("image") ? null : img.src,
    () => img.src))).then(bad => done(bad.filter(x => x)));
"""


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
        assert browser.find_elements(By.CSS_SELECTOR, "mjx-container"), f"{page}: no rendered formula"
    prose = browser.execute_script(VISIBLE_PROSE)
    for raw in ("$$", "\\(", "\\[", "\\begin{"):
        assert raw not in prose, f"{page}: raw math {raw!r} left in the visible text"

    assert browser.execute_async_script(BROKEN_IMAGES) == [], f"{page}: images that do not load"

    for pattern, selector in [(r"prf:\w+", "div.proof"), ("exercise", "div.exercise"), ("solution", "div.solution")]:
        expected = directive_count(source, pattern)
        found = len(browser.find_elements(By.CSS_SELECTOR, selector))
        assert found >= expected, f"{page}: {expected} {pattern} blocks in the source, {found} on the page"

    if is_notebook:
        hrefs = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "a[href*='colab.research.google.com']")]
        assert colab_link(page) in hrefs, f"{page}: Colab button should open {colab_link(page)}, found {hrefs}"

    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, f"{page}: console errors {errors}"
    browser.save_screenshot(str(SCREENSHOTS / (page.replace("/", "__") + ".png")))
