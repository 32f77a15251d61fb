"""The built website works offline in a real browser.

Serves ``_build/html`` on 127.0.0.1 and opens every page in Debian's Chromium
(driven by Playwright) with no internet: formulas must be typeset by the
vendored MathJax (no raw TeX left), every image must load, and the console must
stay free of errors. Screenshots go to ``_build/screenshots/``.

Run after ``make book``; ``make test`` and ``make check`` do both. Skipped, with
the reason, where Chromium or the built site is missing, except in CI (``CI``
set), where a skip would hide a broken site and so fails instead.
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
import zipfile
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or ""
IN_CI = bool(os.environ.get("CI"))

# Prose text of the page: code, outputs and typeset formulas removed, so that
# TeX inside a code cell (a plot label, say) is not mistaken for unrendered math.
PROSE_JS = """() => {
  const main = (document.querySelector('main') || document.body).cloneNode(true);
  main.querySelectorAll('pre, code, .cell_output, mjx-container, script, style')
      .forEach(e => e.remove());
  return main.innerText;
}"""


def need(condition: bool, reason: str) -> None:
    if not condition:
        if IN_CI:
            pytest.fail(f"{reason} (CI must run the browser test)")
        pytest.skip(reason)


def pages() -> list[str]:
    if not SITE.is_dir():
        return []
    skip = {"genindex.html", "search.html"}
    return sorted(
        p.relative_to(SITE).as_posix()
        for p in SITE.rglob("*.html")
        if not p.relative_to(SITE).parts[0].startswith("_") and p.name not in skip
    )


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    need(SITE.is_dir(), f"no built site at {SITE}: run make book first")

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(SITE))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    need(bool(CHROMIUM), "Chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


def test_site_has_the_expected_pages() -> None:
    need(SITE.is_dir(), f"no built site at {SITE}: run make book first")
    found = set(pages())
    assert {
        "book/intro.html",
        "book/bibliography.html",
        "notebooks/00_start/getting_started.html",
    } <= found


@pytest.mark.parametrize("page", pages() or ["(no site)"])
def test_page_renders_offline(server: str, browser, page: str) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    # Nothing outside this machine: any request off 127.0.0.1 is a bug.
    outside: list[str] = []

    def route(r) -> None:
        if r.request.url.startswith(server) or r.request.url.startswith("data:"):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.goto(f"{server}/{page}", wait_until="networkidle")
    tab.wait_for_function(
        "() => !window.MathJax || !MathJax.startup || !MathJax.startup.promise"
        " || MathJax.startup.promise.then(() => true)",
        timeout=20000,
    )
    tab.wait_for_timeout(300)
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SHOTS / (page.replace("/", "__") + ".png")), full_page=True)

    math_in_source = 'class="math' in (SITE / page).read_text(encoding="utf-8")
    formulas = tab.eval_on_selector_all("mjx-container", "els => els.length")
    if math_in_source:
        assert formulas > 0, f"{page}: no typeset formula (MathJax did not run)"
    text = tab.evaluate(PROSE_JS)
    for raw in ("$$", "\\frac", "\\begin{", "\\mid"):
        assert raw not in text, f"{page}: raw TeX {raw!r} left in the page"
    broken = tab.eval_on_selector_all(
        "main img",
        "imgs => imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)",
    )
    assert broken == [], f"{page}: images that did not load: {broken}"
    assert outside == [], f"{page}: requests outside the site: {outside}"
    assert errors == [], f"{page}: console errors: {errors}"
    context.close()


def open_page(server: str, browser, page: str):  # noqa: ANN201 (a Playwright page)
    """A new tab on ``page`` of the built site, loaded; skipped if not built."""
    need((SITE / page).exists(), f"no {page} in the built site")
    tab = browser.new_page()
    tab.goto(f"{server}/{page}", wait_until="networkidle")
    return tab


def test_worked_solution_is_collapsed_until_clicked(server: str, browser) -> None:
    page = "notebooks/06_text/build_gpt.html"
    tab = open_page(server, browser, page)
    solution = tab.get_by_text("reference solution: row 3 averages", exact=False)
    details = tab.locator("details.hide", has=solution)
    assert details.count() == 1, "the worked solution is not in a collapsed cell"
    assert not solution.is_visible(), "the worked solution is visible before a click"
    assert details.get_attribute("open") is None
    details.locator("summary").click()
    solution.wait_for(state="visible", timeout=5000)
    assert details.get_attribute("open") is not None
    tab.close()


def test_teachers_kit_links_the_student_notebooks(
    server: str, browser, tmp_path: Path
) -> None:
    page = "book/teachers_kit.html"
    tab = open_page(server, browser, page)
    link = tab.locator("a.download", has_text="aigc-course-student-notebooks.zip")
    assert link.count() == 1, "the teacher's kit does not link the student notebooks"
    with tab.expect_download() as info:
        link.click()
    archive = tmp_path / "student.zip"
    info.value.save_as(archive)  # before closing: the page's downloads go with it
    tab.close()
    with zipfile.ZipFile(archive) as zipped:
        names = [n for n in zipped.namelist() if n.endswith(".ipynb")]
        assert len(names) == len(list((ROOT / "notebooks").rglob("*.ipynb")))
        for name in names:
            nb = nbformat.reads(zipped.read(name).decode(), as_version=4)
            tagged = [c for c in nb.cells if "solution" in c.metadata.get("tags", [])]
            assert tagged == [], f"{name}: the student version has a solution"


def test_music_page_plays_audio(server: str, browser) -> None:
    page = "notebooks/08_media/music.html"
    tab = open_page(server, browser, page)
    count = tab.eval_on_selector_all("main audio", "els => els.length")
    assert count >= 1, f"{page}: no audio element"
    # every clip's data loads and has a length: the browser can play it
    tab.wait_for_function(
        "() => [...document.querySelectorAll('main audio')]"
        ".every(a => a.readyState >= 1 && a.duration > 0)",
        timeout=20000,
    )
    tab.close()


def test_video_page_shows_animations(server: str, browser) -> None:
    page = "notebooks/08_media/video.html"
    tab = open_page(server, browser, page)
    # matplotlib's jshtml player: an <img> whose frames a script swaps in
    frames = "main img[id^='_anim_img']"
    assert tab.eval_on_selector_all(frames, "els => els.length") >= 1, "no animation"
    tab.wait_for_function(
        f'() => [...document.querySelectorAll("{frames}")]'
        ".every(i => i.complete && i.naturalWidth > 0)",
        timeout=20000,
    )
    first = tab.eval_on_selector(frames, "i => i.src")
    tab.click("main button[onclick*='next_frame']")
    assert tab.eval_on_selector(frames, "i => i.src") != first, "the player is stuck"
    tab.close()
