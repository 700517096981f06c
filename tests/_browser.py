"""Open a report in Debian's headless chromium (driven by playwright over the
Chrome DevTools Protocol, with the system browser: playwright downloads
nothing) and read back what the page did: every request, console message and
page error, the time until every plotly figure rendered, and the traces of the
map (plotly's ``gd._fullData``). Used by tests/test_report_browser.py and
benchmarks/bench_report.py."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CHROMIUM", "FLAGS", "browser_unavailable", "PageRun", "open_page"]

CHROMIUM = os.environ.get("CORESET_CHROMIUM", "/usr/bin/chromium")
#: running as root in a container: no sandbox; no GPU, QUIC, first-run, background or component traffic
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions"]

_WAIT = """() => {
  const divs = Array.from(document.querySelectorAll('.js-plotly-plot'));
  return divs.length > 0 && divs.every(d => d._fullLayout && d._fullData && d.querySelector('.main-svg'));
}"""

_READ = """() => {
  const out = {};
  for (const d of document.querySelectorAll('.js-plotly-plot')) {
    out[d.id] = d._fullData.map(t => ({
      name: t.name, type: t.type, n: t.x ? t.x.length : 0,
      customdata: t.customdata ? Array.from(t.customdata, r => Array.isArray(r) || ArrayBuffer.isView(r) ? r[0] : r)
                               : null}));
  }
  out.__gl = Array.from(document.querySelectorAll('#coreset-map canvas')).length;
  out.__info = JSON.parse(document.getElementById('coreset-report-info').textContent);
  out.__boxes = Object.fromEntries(Array.from(document.querySelectorAll('section'), s => {
    const r = s.getBoundingClientRect(); return [s.id, [r.left + scrollX, r.top + scrollY, r.width, r.height]]; }));
  const imgs = Array.from(document.images);
  out.__imgs = [imgs.length, imgs.filter(i => i.complete && i.naturalWidth > 0).length];
  return out;
}"""


def browser_unavailable() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        return (f"no chromium at {CHROMIUM}: install Debian's chromium (apt-get install -y chromium; .ci/run does "
                "it where it can)")
    return None


@dataclass
class PageRun:
    url: str
    requests: list = field(default_factory=list)   # every request the page made (URL)
    console: list = field(default_factory=list)    # (type, text) of every console message
    errors: list = field(default_factory=list)     # uncaught page errors
    load_s: float = float("nan")                   # navigation start -> every plotly figure rendered
    traces: dict = field(default_factory=dict)     # figure id -> [{name, type, n, customdata}]
    cpu_s: float = float("nan")                    # CPU seconds the browser's processes spent in load_s


def _browser_cpu() -> float:
    """CPU seconds (user + system) of this process's chromium children so far."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is in the test extra
        return float("nan")
    total = 0.0
    for c in psutil.Process().children(recursive=True):
        try:
            if "chrom" in c.name():
                t = c.cpu_times()
                total += t.user + t.system
        except psutil.Error:
            pass
    return total


def open_page(path, *, screenshot=None, timeout_s: float = 60.0, width: int = 1280, height: int = 1600,
              in_iframe: bool = False) -> PageRun:
    """Open ``path`` from a file:// URL in a fresh headless chromium profile,
    wait for the figures (``in_iframe``: those of the page's first iframe, as
    Jupyter shows a report), read them, optionally save a full-page screenshot."""
    from playwright.sync_api import sync_playwright

    url = Path(path).resolve().as_uri()
    run = PageRun(url)
    profile = tempfile.mkdtemp(prefix="coreset-chromium-")
    try:
        with sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=FLAGS,
                viewport={"width": width, "height": height}, service_workers="block")

            def route(r):  # anything but the file itself is refused at once (and recorded below)
                if r.request.url == url:
                    r.continue_()
                else:
                    r.abort()

            ctx.route("**/*", route)
            ctx.on("request", lambda req: run.requests.append(req.url))
            page = ctx.pages[0] if ctx.pages else ctx.new_page()
            page.on("console", lambda m: run.console.append((m.type, m.text)))
            page.on("pageerror", lambda e: run.errors.append(str(e)))
            c0, t0 = _browser_cpu(), time.perf_counter()
            page.goto(url, wait_until="load", timeout=timeout_s * 1000)
            target = page
            if in_iframe:
                page.wait_for_function("document.querySelector('iframe') !== null", timeout=timeout_s * 1000)
                target = page.frames[1]
            target.wait_for_function(_WAIT, timeout=timeout_s * 1000, polling=50)
            run.load_s = time.perf_counter() - t0
            run.cpu_s = _browser_cpu() - c0
            run.traces = target.evaluate(_READ)
            if screenshot is not None:
                page.screenshot(path=str(screenshot), full_page=True)
            ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return run
