"""Browser fixtures: the cairn service of `ui_service` for the session, and headless Chromium tabs.

Chromium is Debian's (`/usr/bin/chromium`), driven by Playwright without a browser download of its own.
Screenshots go to ``$CAIRN_TEST_ARTIFACTS`` (default ``tests/e2e/artifacts/``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from ui_service import CHROMIUM, CHROMIUM_ARGS, Service, artifact, running_service

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


def pytest_configure(config: pytest.Config) -> None:
    if not any(line.startswith("e2e:") for line in config.getini("markers")):
        config.addinivalue_line("markers", "e2e: drives headless Chromium against a real cairn service")


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[Service]:
    with running_service(tmp_path_factory.mktemp("e2e"), embedder) as running:
        yield running


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    # Both are installed by `make install` (pyproject's test extra and the Makefile's apt packages): a missing
    # one is a broken set-up, reported as a failure rather than hidden as a skip.
    import playwright.sync_api as playwright_api

    if not CHROMIUM.exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: run `make install` (it apt-get installs chromium)")
    # Answers and ingests run on a shared CPU: wait for them as long as for any page action.
    playwright_api.expect.set_options(timeout=30_000)
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, service: Service, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh tab (its own sessionStorage) at a laptop size; a screenshot of the end state is kept."""
    context = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)
    context.set_default_timeout(30_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    # A Content-Security-Policy violation is only a console message: the page must cause none.
    tab.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    yield tab
    try:
        tab.screenshot(path=str(artifact(f"{request.node.name}.png")), full_page=True)
    finally:
        context.close()
    assert not errors, f"the page raised: {errors}"
