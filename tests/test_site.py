"""The course website, built as `make site` builds it and read in a real browser.

The site is built once per run (Sphinx, warnings as errors, into a temporary folder), served
by a standard-library HTTP server on 127.0.0.1 (port 0) and driven by Debian's Chromium through
Playwright (no browser download: Chromium comes from the system, installed by `.ci/run`). What a
reader would notice is checked on every page: the page loads with no console error and no
missing resource, every image has a real alt text and is shown at its natural size (so the
figures' 10-pt labels stay 10 pt), every internal link and anchor resolves, the accessibility
audit (axe-core) finds no serious or critical violation, and following "next" from the front page
walks the whole course in the course map's order. Three screenshots are kept in
build/site-screenshots/ for a person to look at.
"""

from __future__ import annotations

import functools
import html.parser
import http.server
import os
import pathlib
import shutil
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "site"))
import course_toc  # noqa: E402  (the site's own table of contents, from the course map)

sys.path.pop(0)

#: Chromium as Debian installs it; CHROMIUM overrides.
CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
#: Flags for a headless Chromium on a machine with no network beyond loopback: no background
#: connections (refused here, and noise in the console), no sandbox when run as root.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
#: A common desktop window. The article column is then about 957 px wide: enough for a
#: figure as wide as JupyterLab shows it (see tests/test_figures.py).
VIEWPORT = {"width": 1920, "height": 1080}
#: Milliseconds the browser may take for one page or one search.
PAGE_TIMEOUT_MS = 20_000
#: axe-core impacts that fail the audit.
FAILING_IMPACTS = {"serious", "critical"}
#: axe-core on every page, all rules but colour contrast, reporting violations only. Colour
#: contrast is checked on every span of highlighted code, which takes half a minute on a long
#: notebook page; the colours come from one theme for every page, so it runs on one page of each
#: kind instead (SAMPLE_PAGES), in test_colour_contrast_on_one_page_of_each_kind.
AXE_EVERY_PAGE = {"resultTypes": ["violations"], "rules": {"color-contrast": {"enabled": False}}}
AXE_CONTRAST = {"resultTypes": ["violations"], "runOnly": ["color-contrast"]}
#: One page of each kind: the front page, a lesson, a notebook with figures, an exercise.
SAMPLE_PAGES = ("site/index", "lessons/04_concurrency", "notebooks/13_latency_under_load",
                "lessons/exercises/ex02_line_echo/README")
#: Seconds the walk over every page may take on a busy 2-core machine.
WALK_TIMEOUT = 900
#: Pages made by Sphinx itself, not by the course: not in the navigation.
GENERATED = {"genindex", "search"}
SCREENSHOTS = ROOT / "build" / "site-screenshots"

# The first test to run builds the site and walks it: the whole module gets the walk's time.
pytestmark = pytest.mark.timeout(WALK_TIMEOUT)


def expected_order() -> list[str]:
    """Every page of the site in reading order: the front page, then the toctrees."""
    pages = ["site/index"]
    for line in course_toc.course_toc().splitlines():
        if line.startswith("/"):
            pages.append(line[1:])
    return pages


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The site, built as `make site` builds it."""
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-q", "-W", "--keep-going", "-E",
         "-c", "site", "-b", "html", ".", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, f"the site did not build:\n{result.stderr[-4000:]}"
    return out


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def base_url(site: pathlib.Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"SKIP: no Chromium at {CHROMIUM} (.ci/run installs Debian's chromium)")
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _serious(audit: Any) -> list[tuple[str, str, int]]:
    return [(v["id"], v["impact"], len(v["nodes"])) for v in audit.response["violations"]
            if v["impact"] in FAILING_IMPACTS]


@pytest.fixture(scope="session")
def walk(browser: Any, base_url: str) -> list[dict[str, Any]]:
    """Follow "next" from the front page to the last page; what each page showed."""
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    seen: list[dict[str, Any]] = []
    problems: list[str] = []
    page.on("console", lambda message: problems.append(f"console {message.type}: {message.text}")
            if message.type == "error" else None)
    page.on("response", lambda response: problems.append(
        f"HTTP {response.status}: {response.url}") if response.status >= 400 else None)
    url = base_url + "site/index.html"
    try:
        for _ in range(len(expected_order()) + 5):  # bounded: a loop in "next" cannot hang
            problems.clear()
            page.goto(url, wait_until="load")
            images = page.evaluate(
                """[...document.querySelectorAll('article img')].map(img => ({
                    src: img.getAttribute('src'), alt: img.getAttribute('alt') || '',
                    natural: img.naturalWidth, shown: img.clientWidth}))""")
            outputs = page.locator(".cell_output").count()
            # What the page itself loaded: axe-core, run next, fetches the style sheets again
            # and resolves their @import against the page instead of the sheet (a 404 of the
            # instrument's own making, not the site's).
            loaded = list(problems)
            violations = _serious(axe.run(page, options=AXE_EVERY_PAGE))
            docname = urllib.parse.urlparse(url).path.lstrip("/").removesuffix(".html")
            seen.append({"docname": docname, "problems": loaded, "images": images,
                         "outputs": outputs, "violations": violations})
            following = page.locator("a.right-next")
            if following.count() == 0:
                break
            url = urllib.parse.urljoin(url, following.first.get_attribute("href"))
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for name in SAMPLE_PAGES[:3]:
            page.goto(base_url + name + ".html", wait_until="load")
            page.screenshot(path=str(SCREENSHOTS / (name.replace("/", "_") + ".png")))
    finally:
        page.close()
    return seen


def test_next_walks_the_whole_course_in_the_course_maps_order(walk: list[dict[str, Any]],
                                                               site: pathlib.Path) -> None:
    walked = [entry["docname"] for entry in walk]
    assert walked == expected_order()
    built = {str(path.relative_to(site).with_suffix("")) for path in site.rglob("*.html")
             if "_static" not in path.parts and "_sources" not in path.parts}
    missing = sorted(built - set(walked) - GENERATED - {"index"})
    assert not missing, f"pages not reached by the navigation: {missing}"


def test_every_page_loads_with_no_console_error_or_missing_resource(
        walk: list[dict[str, Any]]) -> None:
    bad = {entry["docname"]: entry["problems"] for entry in walk if entry["problems"]}
    assert not bad, "\n".join(f"{name}: {problems}" for name, problems in bad.items())


def test_the_accessibility_audit_finds_nothing_serious(walk: list[dict[str, Any]]) -> None:
    bad = {entry["docname"]: entry["violations"] for entry in walk if entry["violations"]}
    assert not bad, f"axe-core, serious or critical: {bad}"


def test_every_image_has_alt_text_and_is_shown_at_its_natural_size(
        walk: list[dict[str, Any]]) -> None:
    images = [(entry["docname"], image) for entry in walk for image in entry["images"]]
    assert len(images) >= 30, "the notebooks' figures are missing from the site"
    no_alt = [(name, image["src"]) for name, image in images
              if len(image["alt"].split()) < 5 or image["alt"] == image["src"]]
    assert not no_alt, f"images without a real alt text (a sentence): {no_alt}"
    shrunk = [(name, image["src"], image["natural"], image["shown"]) for name, image in images
              if image["shown"] + 1 < image["natural"]]
    assert not shrunk, f"images scaled down, so their labels read smaller than drawn: {shrunk}"


def test_notebook_pages_show_their_outputs(walk: list[dict[str, Any]]) -> None:
    notebooks = [entry for entry in walk if entry["docname"].startswith("notebooks/")]
    assert notebooks
    assert all(entry["outputs"] > 0 for entry in notebooks), [
        entry["docname"] for entry in notebooks if entry["outputs"] == 0]


def test_colour_contrast_on_one_page_of_each_kind(browser: Any, base_url: str) -> None:
    from axe_playwright_python.sync_playwright import Axe

    tab = browser.new_page(viewport=VIEWPORT)
    bad = {}
    try:
        for name in SAMPLE_PAGES:
            tab.goto(f"{base_url}{name}.html", wait_until="load")
            violations = _serious(Axe().run(tab, options=AXE_CONTRAST))
            if violations:
                bad[name] = violations
    finally:
        tab.close()
    assert not bad, f"axe-core colour contrast: {bad}"


@pytest.mark.parametrize(("query", "page"), [
    ("shutdown", "notebooks/01_base_server"),
    ("backlog", "site/glossary"),
    ("GIL", "notebooks/14_prefork_and_the_gil"),
])
def test_search_finds_the_page_that_teaches_the_word(browser: Any, base_url: str,
                                                     query: str, page: str) -> None:
    tab = browser.new_page(viewport=VIEWPORT)
    try:
        tab.set_default_timeout(PAGE_TIMEOUT_MS)
        tab.goto(f"{base_url}search.html?q={urllib.parse.quote(query)}")
        tab.wait_for_selector("#search-results li a")
        found = [link.get_attribute("href") for link in tab.query_selector_all(
            "#search-results li a")]
    finally:
        tab.close()
    pages = [urllib.parse.urlparse(href).path.removesuffix(".html") for href in found]
    assert page in pages[:10], f"{query!r}: first results {pages[:10]}"


class _Anchors(html.parser.HTMLParser):
    """The ids of a page and the internal links it holds."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(values["id"] or "")
        if tag == "a" and values.get("href"):
            self.links.append(values["href"] or "")


def test_every_internal_link_and_anchor_resolves(site: pathlib.Path) -> None:
    pages: dict[pathlib.Path, _Anchors] = {}
    for path in site.rglob("*.html"):
        if "_static" in path.parts:
            continue
        parser = _Anchors()
        parser.feed(path.read_text(encoding="utf-8"))
        pages[path] = parser
    broken = []
    for path, parser in pages.items():
        for href in parser.links:
            parts = urllib.parse.urlparse(href)
            if parts.scheme or parts.netloc or href.startswith(("mailto:", "javascript:")):
                continue  # external: listed by `make site-links`, checked where a network exists
            target = (path.parent / parts.path).resolve() if parts.path else path
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{path.relative_to(site)} -> {href}")
            elif parts.fragment and target.suffix == ".html":
                anchors = pages.get(target)
                if anchors is not None and parts.fragment not in anchors.ids:
                    broken.append(f"{path.relative_to(site)} -> {href} (no such anchor)")
    assert not broken, "\n".join(broken[:40])
