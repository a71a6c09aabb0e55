"""Browser tests: Debian's Chromium driven by Playwright against pytest-django's live server.

Chromium comes from Debian (``apt-get install chromium``), not from Playwright's
download. Without it the tests are skipped; under REQUIRE_SERVICES=1 they fail.
Every test here is marked ``browser`` (``pytest -m "not browser"`` leaves them out).
On failure the page is saved to test-results/<test name>.png.

Accessibility: axe-core comes from npm, pinned in tests/browser/package.json (and package-lock.json);
the ``axe_path`` fixture installs it with ``npm ci --prefix tests/browser`` when it is missing, so that
``make test`` sets itself up. Without npm (or when the install fails) the accessibility tests are
skipped; under REQUIRE_SERVICES=1 they fail. ``axe_check(page, "where")`` fails the test with every
serious or critical WCAG 2 A/AA violation of the page.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
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
AXE_JS = HERE / "node_modules" / "axe-core" / "axe.min.js"
# What axe checks: WCAG 2.0 and 2.1, levels A and AA; what fails a test: serious and critical findings.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
AXE_BLOCKING = ("serious", "critical")

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


def saving_screenshots() -> bool:
    return os.environ.get("SAVE_SCREENSHOTS", "") in {"1", "true", "yes"}


# --- accessibility: axe-core ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def axe_path() -> Path:
    """axe.min.js from tests/browser/node_modules, installed by ``npm ci --prefix tests/browser`` (the
    pinned version of package-lock.json) when missing. No npm, or a failed install: skip (fail in CI)."""
    if not AXE_JS.exists():
        npm = shutil.which("npm")
        need(npm is not None, "the accessibility checks need npm to install axe-core (apt-get install npm)")
        assert npm is not None
        try:
            done = subprocess.run(
                [npm, "ci", "--prefix", str(HERE), "--no-audit", "--no-fund"],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            output = (done.stdout + done.stderr)[-2000:]
            ok = done.returncode == 0
        except (OSError, subprocess.TimeoutExpired) as exc:
            output, ok = str(exc), False
        need(
            ok and AXE_JS.exists(),
            f"`npm ci --prefix tests/browser` could not install axe-core:\n{output}",
        )
    return AXE_JS


AXE_RUN = """async ([tags, blocking]) => {
  const result = await axe.run(document, {
    runOnly: {type: "tag", values: tags},
    resultTypes: ["violations"],
  });
  return result.violations
    .filter((v) => blocking.includes(v.impact))
    .map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((n) => ({
        target: n.target.map((t) => (Array.isArray(t) ? t.join(" >>> ") : String(t))),
        html: n.html.replace(/\\s+/g, " ").slice(0, 160),
      })),
    }));
}"""


def axe_inject(page: Any, axe_js: Path) -> None:
    """Put axe on the page: a script tag (add_script_tag); where the page's Content-Security-Policy refuses
    an inline script (a context without ``bypass_csp``), the same source through the DevTools protocol."""
    if page.evaluate("typeof window.axe !== 'undefined'"):
        return
    with contextlib.suppress(Exception):  # the CSP refused the tag: Playwright reports its load error
        page.add_script_tag(path=str(axe_js))
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(axe_js.read_text(encoding="utf-8") + "\n;void 0")


def axe_violations(page: Any, axe_js: Path) -> list[dict[str, Any]]:
    """The serious and critical WCAG 2 A/AA violations of the page as it is now."""
    axe_inject(page, axe_js)
    return list(page.evaluate(AXE_RUN, [AXE_TAGS, list(AXE_BLOCKING)]))


def axe_report(context_name: str, violations: list[dict[str, Any]]) -> str:
    """One readable block per violation: rule id, impact, help, and each node's selector and HTML."""
    lines = [f"{context_name}: {len(violations)} serious/critical accessibility violation(s)"]
    for v in violations:
        lines.append(f"  [{v['impact']}] {v['id']}: {v['help']}")
        for node in v["nodes"][:8]:
            lines.append(f"      at {', '.join(node['target'])}  {node['html']}")
        if len(v["nodes"]) > 8:
            lines.append(f"      … and {len(v['nodes']) - 8} more")
    return "\n".join(lines)


@pytest.fixture
def axe_check(axe_path: Path) -> Callable[[Any, str], None]:
    """``axe_check(page, "where")``: fail listing every serious/critical WCAG 2 A/AA violation."""

    def check(page: Any, context_name: str) -> None:
        violations = axe_violations(page, axe_path)
        if violations:
            pytest.fail(axe_report(context_name, violations), pytrace=False)

    return check


# --- layout and focus -----------------------------------------------------------------------------------


def sideways_overflow(page: Any) -> str:
    """'' when the page fits its viewport's width (1 px of rounding allowed); else what is too wide."""
    sizes = page.evaluate(
        """() => {
          const view = window.innerWidth;
          const doc = document.documentElement.scrollWidth;
          let widest = "";
          if (doc > view + 1) {
            for (const el of document.body.querySelectorAll("*")) {
              const r = el.getBoundingClientRect();
              if (r.right > view + 1 && getComputedStyle(el).position !== "fixed") {
                const id = el.id ? "#" + el.id : "";
                const cls = el.classList.length ? "." + [...el.classList].join(".") : "";
                widest = `${el.tagName.toLowerCase()}${id}${cls} (right edge ${Math.round(r.right)}px)`;
                break;
              }
            }
          }
          return {view, doc, widest};
        }"""
    )
    if sizes["doc"] <= sizes["view"] + 1:
        return ""
    return f"{sizes['doc']}px wide on a {sizes['view']}px screen; first too wide: {sizes['widest']}"


FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const r = el.getBoundingClientRect();
  const style = getComputedStyle(el);
  let name = "";
  if (window.axe) {
    try {
      axe.setup(document);
      name = axe.commons.text.accessibleText(el);
    } finally {
      axe.teardown();
    }
  } else {
    name = el.getAttribute("aria-label") || (el.labels && el.labels[0] ? el.labels[0].textContent : "") ||
      el.textContent || "";
  }
  return {
    tag: el.tagName.toLowerCase(),
    type: el.getAttribute("type") || "",
    role: el.getAttribute("role") || "",
    name: name.replace(/\\s+/g, " ").trim(),
    href: el.getAttribute("href") || "",
    visible: r.width > 0 && r.height > 0 && style.visibility !== "hidden" && style.display !== "none",
    inViewport: r.bottom > 0 && r.right > 0 && r.top < window.innerHeight && r.left < window.innerWidth,
    outline: (style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0) ||
      style.boxShadow !== "none",
  };
}"""


def focused(page: Any) -> dict[str, Any] | None:
    """What has the keyboard focus: tag, role, accessible name (axe's when axe is on the page), and
    whether it is visible, on screen and drawn with a focus indicator."""
    return page.evaluate(FOCUSED)


# --- Japanese pages -------------------------------------------------------------------------------------


def ja(msgid: str, **values: Any) -> str:
    """What the Japanese page says for ``msgid`` (Django's catalogue; an untranslated string stays)."""
    from django.utils import translation

    with translation.override("ja"):
        text = translation.gettext(msgid)
    return text % values if values else text


def ja_label(msgid: str) -> re.Pattern[str]:
    """A form field's label in Japanese, with or without Django's label suffix (":")."""
    return re.compile(rf"^{re.escape(ja(msgid))}\s*[:：]?\s*\*?$")
