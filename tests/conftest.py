"""Shared fixtures: the app launched in-process (for gradio_client), and a real Chromium page
(Playwright driving Debian's /usr/bin/chromium; never `playwright install`)."""
from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ARTIFACTS = ROOT / "tests" / "artifacts"

from demos.common import share_tls_context  # noqa: E402

share_tls_context()     # gradio_client's per-request TLS context was a large share of the API tests' CPU

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


# The longest test files first: pytest-xdist hands out whole files (--dist loadfile) in collection order, so
# the long browser walks start at once and the short files fill the gaps, instead of one long file left
# running alone at the end (the tail was a quarter of the suite's time).
LONG_FIRST = ("test_api_inputs", "_classroom_browser", "test_prompt_tour", "test_a11y_browser", "test_browser_frame",
              "_browser", "_tour", "_card", "test_result_files")


# A browser test whose wait on the page timed out (Playwright's TimeoutError: a page that did not load, or
# a result that did not appear in time), or whose page load Chromium aborted, runs once more
# (pytest-rerunfailures): with three workers on two cores a page can wait minutes for a busy server. The
# summary counts every rerun, and a second failure fails the test. A failed assertion on what the page
# shows (an AssertionError, also from the helpers that turn a wait into one) is never rerun.
PAGE_WAITS = [r"^TimeoutError: (Page|Locator|Frame)\.", r"^Error: Page\.goto: net::ERR_ABORTED"]


def pytest_collection_modifyitems(config, items):
    def rank(item):
        name = item.path.stem
        return next((i for i, part in enumerate(LONG_FIRST) if part in name), len(LONG_FIRST))
    items.sort(key=rank)                        # stable: a file's tests keep their order
    for item in items:
        if item.get_closest_marker("browser") and not item.get_closest_marker("flaky"):
            item.add_marker(pytest.mark.flaky(reruns=1, only_rerun=PAGE_WAITS))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module's tests (restored after them)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def app_url():
    """The whole app, every tab, served in this process on a free loopback port."""
    import app as app_module
    from playground.core import hub, settings, ui

    hub.decide("yes")  # tests never wait for the hub
    cfg = settings.from_env()
    demo = app_module.build_app(cfg)
    demo.queue(default_concurrency_limit=4)
    port = free_port()
    ui.launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
              share=False, **ui.LAUNCH, max_file_size="10mb")
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="session")
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: apt-get install -y chromium chromium-driver")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield b
        b.close()


@pytest.fixture()
def page(browser, app_url, request):
    """A fresh page at the app, or at the address the test module names in PAGE_QUERY (e.g. "?lab=clip").
    A test opens its page once: a second goto while the first page's own requests are still on their way
    is aborted by Chromium (net::ERR_ABORTED) on a busy machine."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(30_000)
    pg.goto(app_url + getattr(request.module, "PAGE_QUERY", ""))
    pg.wait_for_selector("#tab-home, button[role=tab]")
    yield pg
    ctx.close()


def open_tab(page, title: str) -> None:
    """Click a top-level tab by its visible title, as a person would."""
    page.get_by_role("tab", name=title, exact=True).first.click()


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# --- what a person does on a page (shared by the browser tests) ------------------------------------

def drag(page, sel: str, frac_from: float, frac_to: float, steps: int = 6) -> None:
    """Press on a slider's track (the first range input under `sel`) and drag the mouse along it."""
    track = page.locator(f"{sel} input[type=range]").first
    track.scroll_into_view_if_needed()
    bb = track.bounding_box()
    y = bb["y"] + bb["height"] / 2
    page.mouse.move(bb["x"] + bb["width"] * frac_from, y)
    page.mouse.down()
    page.mouse.move(bb["x"] + bb["width"] * frac_to, y, steps=steps)
    page.mouse.up()


def image_src(page, sel: str) -> str:
    loc = page.locator(f"{sel} img")
    return (loc.first.get_attribute("src") or "") if loc.count() else ""


def wait_new_src(page, sel: str, old: str, timeout: int = 60_000) -> str:
    """Wait until the image under `sel` shows something other than `old`, fully loaded."""
    page.wait_for_function(
        """([sel, old]) => { const i = document.querySelector(sel + ' img');
                             return i && i.src && i.getAttribute('src') !== old && i.complete; }""",
        arg=[sel, old], timeout=timeout)
    return image_src(page, sel)


def new_page(browser, url: str, width: int = 1400, height: int = 1000, **kw):
    """A fresh browser context (no state shared with another page) opened at `url`."""
    ctx = browser.new_context(viewport={"width": width, "height": height}, **kw)
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    pg.goto(url)
    pg.wait_for_selector("button[role=tab]")
    return pg


# --- accessibility (axe-core from tests/node_modules, pinned in tests/package.json) ---------------

AXE = ROOT / "tests" / "node_modules" / "axe-core" / "axe.min.js"
BUSY = "() => !document.querySelector('.progress-text, .eta-bar, .pending')"
AXE_SERIOUS = """async (sel) => (await axe.run(sel ? document.querySelector(sel) : document,
    {resultTypes: ['violations']})).violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => `${v.id} (${v.impact}): ${v.nodes.length} x, e.g. ${v.nodes[0].target.join(' ')}`)"""


def settled_text(page, sel: str, timeout: int = 120_000) -> str:
    """The text of `sel` once no output of the page is being updated, read the same twice half a second
    apart with nothing pending before and after (an event can follow another: a link's load, then the
    change it sets off). While an output is queued or refreshed, Gradio's status ("queue: 1/1", the
    timer "0.7s") is part of its text."""
    deadline, last = time.monotonic() + timeout / 1000, None
    while True:
        page.wait_for_function(BUSY, timeout=timeout)
        text = page.locator(sel).inner_text()
        if text == last and page.evaluate(BUSY):
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"{sel} did not settle in {timeout / 1000:.0f} s; last read: {text[:200]!r}")
        last = text
        page.wait_for_timeout(500)


def axe_serious(page, within: str | None = None, timeout: int = 120_000) -> list[str]:
    """axe-core's serious and critical violations on the page (or under the selector `within`), once no
    result is being updated. An output being refreshed fades for a moment (Gradio dims it, then fades it
    back in), which axe reads as text below AA contrast: a finding counts only when it is still there when
    the page has been settled for two seconds more."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: `python3 run.py test` installs it (npm ci in tests/)")
    if not page.evaluate("() => typeof axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    page.wait_for_function(BUSY, timeout=timeout)
    if not page.evaluate(AXE_SERIOUS, within):
        return []
    page.wait_for_timeout(2000)
    page.wait_for_function(BUSY, timeout=timeout)
    return page.evaluate(AXE_SERIOUS, within)
