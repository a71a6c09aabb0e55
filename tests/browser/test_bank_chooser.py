"""The 情報リンク bank chooser and the sandbox bank in Debian's Chromium: usable at 390 px and by keyboard.

Drives the demo (seed_demo): 山田 太郎 (taro@example.jp) opens 2026-11-000101's bank chooser, tabs to a bank
and presses Enter; the sandbox bank opens playing that bank. Skipped without Chromium (failed under
REQUIRE_SERVICES=1), like tests/browser.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from billing.models import Biller, CustomerAccount, Invoice
from billing.tenancy import tenant_reverse
from payeasy.demo import seed_demo

NARROW = {"width": 390, "height": 844}
SHOTS = os.environ.get("FIRSTRUN_SCREENSHOTS", "")  # a folder: save the pages there to look at them

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def narrow_page(browser: Any, live_server: Any) -> Iterator[Any]:
    """A 390 px wide phone-sized page of 山田 太郎, logged in to 東都電力's portal."""
    seed_demo()
    account = CustomerAccount.objects.get(biller__slug="toto-denryoku", user__email="taro@example.jp")
    client = Client()
    client.force_login(account.user)
    context = browser.new_context(locale="ja-JP", viewport=NARROW, device_scale_factor=1, has_touch=True)
    context.set_default_timeout(10_000)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])
    try:
        yield context.new_page()
    finally:
        context.close()


def shot(page: Any, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def fits(page: Any) -> None:
    """Nothing wider than the screen: no sideways scrolling at 390 px."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= NARROW["width"], f"the page is {width} px wide"


def test_choose_a_bank_at_390px_with_the_keyboard(narrow_page: Any, live_server: Any) -> None:
    page, base = narrow_page, live_server.url
    toto = Biller.objects.get(slug="toto-denryoku")
    invoice = Invoice.objects.get(biller=toto, number="2026-11-000101")
    page.goto(base + tenant_reverse(toto, "portal:pay", kwargs={"pk": invoice.pk}))
    banks = page.get_by_role("list", name="金融機関")
    links = banks.get_by_role("link")
    assert links.count() == 4
    names = banks.locator(".bank-choice-name").all_inner_texts()
    assert sorted(names) == sorted(["みずほ銀行", "三菱UFJ銀行", "三井住友銀行", "PayPay銀行"])
    fits(page)
    for i in range(links.count()):  # each row a large target, side by side with nothing
        box = links.nth(i).bounding_box()
        assert box["height"] >= 44 and box["x"] >= 0 and box["x"] + box["width"] <= NARROW["width"]
    # the logo slot is decorative: the link's accessible name is the bank's name, not its monogram
    mizuho = banks.get_by_role("link", name=re.compile(r"^みずほ銀行"))
    assert mizuho.count() == 1 and mizuho.locator(".bank-logo[aria-hidden=true]").inner_text().strip() == "み"
    shot(page, "firstrun-bank-chooser-390")

    # by keyboard: Tab from the search button reaches the banks in order, focus is visible, Enter follows
    page.get_by_role("button", name="検索").focus()
    reached: list[str] = []
    for _ in range(6):
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.className")
        if focused == "bank-choice":
            reached.append(
                page.evaluate("document.activeElement.querySelector('.bank-choice-name').textContent")
            )
            outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
            assert outline not in ("", "none"), "the focused bank shows no outline"
        if len(reached) == 2:
            break
    assert reached == names[:2]  # in the list's order, nothing in between
    shot(page, "firstrun-bank-chooser-390-focus")
    page.route(
        re.compile(r"/static/js/handoff\.js"), lambda route: route.abort()
    )  # stay on the hand-off page
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/pay/\d{4}/$"))
    expect_heading = page.get_by_role("heading", level=1).inner_text()
    assert reached[-1] in expect_heading
    fits(page)

    # on to the sandbox bank: its own site, playing the chosen bank
    page.get_by_role("button", name=re.compile(reached[-1])).click()
    page.wait_for_url(re.compile(r"/sandbox-bank/entry/(\d{4}/)?$"))
    assert page.locator(".bank-brand-name").inner_text() == reached[-1]
    assert page.locator("header.site-header").count() == 0 and page.locator("#lang-select").count() == 0
    fits(page)
    shot(page, "firstrun-sandbox-login-390")
    page.keyboard.press("Tab")  # the first Tab reaches the skip link
    assert page.evaluate("document.activeElement.getAttribute('href')") == "#main"
    assert page.get_by_role("link", name="メインコンテンツへスキップ").is_visible()
