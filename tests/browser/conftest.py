"""Browser tests: Debian's Chromium driven by Playwright against pytest-django's live server.

Chromium comes from Debian (``apt-get install chromium``), not from Playwright's
download. Without it the tests are skipped; under REQUIRE_SERVICES=1 they fail.
Every test here is marked ``browser`` (``pytest -m "not browser"`` leaves them out).
On failure the page is saved to test-results/<test name>.png.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import need

# Playwright's sync API runs an asyncio loop in this thread; Django would otherwise refuse DB access.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SCREENSHOT_DIR = ROOT / "docs" / "screenshots"

_report_key = pytest.StashKey[dict[str, pytest.TestReport]]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    item.stash.setdefault(_report_key, {})[report.when] = report
    return report


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    need(
        os.path.exists(CHROMIUM),
        f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium)",
    )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # pragma: no cover - depends on the environment
        need(False, f"browser tests need the playwright package ({exc})")
        raise
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_locale() -> str:
    """The browser's language; LocaleMiddleware follows its Accept-Language. Override per test."""
    return "ja-JP"


@pytest.fixture
def page(browser: Any, browser_locale: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(locale=browser_locale, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        yield page
    finally:
        reports = request.node.stash.get(_report_key, {})
        if any(r.failed for r in reports.values()):
            out = ROOT / "test-results"
            out.mkdir(exist_ok=True)
            name = re.sub(r"[^\w.-]+", "_", request.node.name)
            try:
                page.screenshot(path=str(out / f"{name}.png"), full_page=True)
            except Exception as exc:  # the page may be gone; the test failure is what matters
                print(f"could not save a failure screenshot: {exc}")
        context.close()


@pytest.fixture
def screenshot() -> Any:
    """``screenshot(page, "name")`` writes docs/screenshots/name.png, only when SAVE_SCREENSHOTS=1."""

    def save(page: Any, name: str) -> None:
        if os.environ.get("SAVE_SCREENSHOTS", "") not in {"1", "true", "yes"}:
            return
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT_DIR / f"{name}.png"), full_page=True)

    return save


def pass_second_factor(page: Any, email: str) -> None:
    """After the console password: give the code (from the key the factory enrolled, tests.factories) or,
    for a user without one, set it up from the key the page shows and continue past the recovery codes."""
    import pyotp
    from playwright.sync_api import expect

    from tests import factories

    page.wait_for_url(re.compile(r"/accounts/(login/code|two-step/setup)/"))
    if "/two-step/setup/" in page.url:
        secret = page.locator("#totp-secret").inner_text().replace(" ", "")
        page.locator("input[name=code]").fill(pyotp.TOTP(secret).now())
        page.locator("main form button.primary").click()
        expect(page.locator("ul.recovery-codes li")).to_have_count(10)
        page.locator("main a.button.primary").click()
    else:
        page.locator("input[name=code]").fill(factories.totp_code(email))
        page.locator("main form button.primary").first.click()
