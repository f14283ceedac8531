"""The documentation site: it builds strictly, its generated pages follow the registry and the committed results,
and a real browser (headless Chromium) shows the home and results pages with every image loaded."""

from __future__ import annotations

import functools
import html
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# what the machines' closed network needs: no background connections, no first-run or sync traffic
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip


@functools.cache
def _built(out: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DISABLE_MKDOCS_2_WARNING": "true", "NO_MKDOCS_2_WARNING": "1"}  # the plugins' banners
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", out]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False, env=env)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built with `mkdocs build --strict` (as tox -m docs does) into a temporary folder."""
    pytest.importorskip("mkdocs", reason="mkdocs is a dev dependency: pip install -e '.[dev]'")
    out = tmp_path_factory.mktemp("site")
    r = _built(str(out))
    assert r.returncode == 0, f"mkdocs build --strict failed:\n{r.stderr[-3000:]}"
    return out


def test_every_hand_written_page_is_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8").split("\nnav:\n", 1)[1]
    listed = set(re.findall(r":\s*(\S+\.md)\s*$", nav, flags=re.M))
    pages = {p.name for p in (ROOT / "docs").glob("*.md")}
    generated = {"results.md", "implementations/index.md"}
    assert pages <= listed and listed - pages <= generated, (sorted(pages - listed), sorted(listed - pages))


def test_a_page_per_registered_implementation_says_what_it_declares(site: Path) -> None:
    import impls

    index = (site / "implementations" / "index.html").read_text(encoding="utf-8")
    for name in impls.names():
        cls = impls.get(name)
        page = html.unescape(re.sub(r"<[^>]+>", "", (site / "implementations" / name / "index.html").read_text()))
        assert cls.summary in page and ", ".join(cls.precisions) in page and ", ".join(cls.devices) in page, name
        assert f"class {cls.__name__}" in page, f"{name}: its source is not shown"
        assert f'href="{name}/"' in index, f"the implementations index lacks {name}"


def test_every_include_is_expanded_on_every_page(site: Path) -> None:
    """No code block shows a snippet marker: an include mangled in its page (`--8 < --`) is rendered verbatim."""
    for page in sorted(site.rglob("*.html")):
        for pre in re.findall(r"<pre\b.*?</pre>", page.read_text(encoding="utf-8"), flags=re.S):
            code = html.unescape(re.sub(r"<[^>]+>", "", pre))
            assert not re.search(r"--8\s*<\s*--", code), f"{page.relative_to(site)} shows an unexpanded include"


def test_results_and_experiments_pages_carry_the_committed_report_and_its_plots(site: Path) -> None:
    results = (site / "results" / "index.html").read_text(encoding="utf-8")
    for png in sorted((ROOT / "reports" / "results" / "plots").glob("*.png")):
        if f"plots/{png.name}" in (ROOT / "reports" / "results" / "README.md").read_text(encoding="utf-8"):
            assert f"plots/{png.name}" in results and (site / "plots" / png.name).read_bytes() == png.read_bytes()
    experiments = (site / "experiments" / "index.html").read_text(encoding="utf-8")
    for name in ("rumelhart", "epfl", "umons", "cs231n", "lab2"):
        assert f"reproduce/{name}/" in experiments, name
    assert "Reference vs ours" in experiments and "Reproduced experiments</h2>" not in results


def test_the_tolerance_derivation_is_typeset_maths(site: Path) -> None:
    """The formulas reach the page as arithmatex markup, which MathJax (loaded from its CDN) typesets."""
    page = (site / "tolerances" / "index.html").read_text(encoding="utf-8")
    assert page.count('class="arithmatex"') >= 20 and "\\gamma_k" in page and "mathjax" in page.lower()


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    """The built site over HTTP on localhost (directory URLs need a server, as on any host)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (Debian: apt-get install chromium)")
@pytest.mark.parametrize(("page", "min_images"), [("", 1), ("results/", 9)])
def test_chromium_shows_the_page_with_every_image_loaded(
    served: str, page: str, min_images: int, tmp_path: Path
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a dev dependency")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(viewport={"width": 1280, "height": 900})
            tab.goto(served + page, wait_until="load")
            images = tab.evaluate(
                "() => Array.from(document.images).map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])"
            )
            title = tab.title()
            shot = tmp_path / f"{page.strip('/') or 'home'}.png"
            tab.screenshot(path=str(shot), full_page=False)
        finally:
            browser.close()
    broken = [src for src, ok in images if not ok]
    assert len(images) >= min_images and not broken, (images, broken)
    assert "twolayer" in title, title
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000, "a blank screenshot"
    if keep := os.environ.get("TWOLAYER_SCREENSHOTS"):  # where to keep them for a look (CI, a reviewer)
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / shot.name)
