"""Browser fixtures: a real server (composition root + the web test pack) and Debian's chromium.

Browser tests skip, with a reason, only when /usr/bin/chromium is missing. Playwright never downloads a
browser here: it drives the system one through ``executable_path``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from server.composition import compose

from .canvas_driver import CanvasPage
from .live_server import LiveServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
VIEWPORT = {"width": 1400, "height": 820}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is missing (apt-get install chromium) - browser tests skipped")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("server")).start()
    yield server
    server.stop()


@pytest.fixture
def context(browser: object) -> Iterator[object]:
    """A fresh browser profile per test (its own localStorage)."""
    browser_context = browser.new_context(viewport=VIEWPORT)
    # Generous waits: CI machines are small and busy; a passing test never waits for these to run out.
    browser_context.set_default_timeout(60_000)
    browser_context.set_default_navigation_timeout(90_000)
    yield browser_context
    browser_context.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def canvas(context, live_server: LiveServer) -> Iterator[CanvasPage]:
    """The canvas page on the module's server with an empty graph; no console errors by the end."""
    page = CanvasPage(context.new_page(), live_server.url).open()
    page.clear_graph()
    yield page
    assert page.errors == []


@pytest.fixture(scope="module")
def registry(live_server: LiveServer):
    """The same node types the server has, for latentloom.workflow's own conversions."""
    return compose(live_server.config, extra_packs=[live_server.pack]).registry
