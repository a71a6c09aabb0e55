"""The page frame in the browser: at 390 px the console's navigation folds behind a menu button that the
keyboard opens and Escape closes, with the current page marked; at 1280 px the bar shows every link and no
button; the language switch changes the language with one click; the skip link leads to the main
content; the favicon is an icon. Set SAVE_SCREENSHOTS=1 to refresh docs/screenshots/."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from billing.models import Membership
from tests import factories
from tests.browser.conftest import pass_second_factor

PASSWORD = "correct horse battery"
EMAIL = "keiri@frame-denki.jp"


def log_in(page: Any, base: str) -> None:
    page.goto(base + "/accounts/login/")
    main = page.get_by_role("main")
    main.locator("input[name=email]").fill(EMAIL)
    main.locator("input[name=password]").fill(PASSWORD)
    main.locator("form button.primary").click()
    pass_second_factor(page, EMAIL)


def test_frame_navigation_language_and_skip_link(page: Any, live_server: Any, screenshot: Any) -> None:
    base = live_server.url
    biller = factories.make_biller(legal_name="株式会社フレーム電気")
    user = factories.make_user(EMAIL, password=PASSWORD, name="経理 花子")
    Membership.objects.create(biller=biller, user=user, role=Membership.Role.ADMIN)
    log_in(page, base)
    invoices = f"{base}/b/{biller.slug}/console/invoices/"
    page.goto(invoices)

    # the header: the biller's monogram (株式会社 left out) and name
    banner = page.get_by_role("banner")
    expect(banner.locator(".brand-mark")).to_have_text("フ")
    expect(banner.locator(".brand-name")).to_have_text(biller.legal_name)

    # 1280 px: every link in the bar, no menu button
    nav = banner.locator("nav.site-nav")
    toggle = nav.locator("button.nav-toggle")
    expect(toggle).to_be_hidden()
    current = nav.locator('a[aria-current="page"]')
    expect(current).to_have_count(1)
    expect(current).to_be_visible()
    expect(current).to_have_attribute("href", re.compile(r"/console/invoices/$"))

    # 390 px: the bar folds behind the button; the keyboard opens it, Escape closes it
    page.set_viewport_size({"width": 390, "height": 844})
    expect(toggle).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(current).to_be_hidden()
    expect(toggle).to_contain_text(current.inner_text())  # the button says where the reader is
    toggle.focus()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(current).to_be_visible()
    screenshot(page, "frame-menu-390")
    page.keyboard.press("Tab")  # into the list
    page.keyboard.press("Escape")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(toggle).to_be_focused()
    sizes = page.evaluate("({doc: document.documentElement.scrollWidth, view: window.innerWidth})")
    assert sizes["doc"] <= sizes["view"], sizes

    # one click switches the language and stays on the page
    lang = page.locator("form.lang-switch")
    english = lang.locator('button[value="en"]')
    japanese = lang.locator('button[value="ja"]')
    pressed = "true" if page.locator("html").get_attribute("lang") == "ja" else "false"
    expect(japanese).to_have_attribute("aria-pressed", pressed)
    english.click()
    expect(page).to_have_url(invoices)
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(english).to_have_attribute("aria-pressed", "true")
    expect(japanese).to_have_attribute("aria-pressed", "false")
    japanese.click()
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    expect(page.get_by_role("heading", level=1)).to_have_text("請求書")

    # the skip link is the first stop and leads to the main content
    page.keyboard.press("Tab")
    skip = page.locator("a.skip-link")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page.locator("main#main")).to_be_focused()

    # the icons base.html links, and /favicon.ico
    for path, kind in (("/favicon.ico", "image/"), ("/static/favicon.svg", "image/svg+xml")):
        answer = page.request.get(base + path)
        assert answer.ok and answer.headers["content-type"].startswith(kind), (path, answer.headers)
