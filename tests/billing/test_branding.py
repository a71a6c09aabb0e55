"""The page frame (templates/base.html): the biller's mark and name in the header, the language switch
that needs one click, the navigation's current page, the landmarks and the stylesheets it links."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

from billing.context_processors import MONOGRAM_TONES, biller_brand, monogram, tone
from billing.models import Biller


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("株式会社サンプル電力", "サ"),
        ("サンプル水道株式会社", "サ"),
        ("(株)東京ガス", "東"),
        ("（株）東京ガス", "東"),
        ("㈱みらい", "み"),
        ("一般社団法人 日本協会", "日"),
        ("Acme Water Co., Ltd.", "AW"),
        ("The Example Corp", "E"),
        ("ｱｸﾒ", "ア"),  # half-width kana are normalised
        ("株式会社", "?"),  # nothing but a legal form
        ("", "?"),
    ],
)
def test_monogram_is_the_names_first_meaningful_character(name: str, expected: str) -> None:
    assert monogram(name) == expected


def test_tone_is_stable_and_in_range() -> None:
    tones = {tone(f"biller-{n}") for n in range(200)}
    assert tones == set(range(1, MONOGRAM_TONES + 1))  # every tone is used…
    assert tone("toto-denryoku") == tone("toto-denryoku")  # …and a biller keeps its own


def test_biller_brand_without_a_biller_is_none() -> None:
    assert biller_brand(None) is None


def _header(html: str) -> str:
    found = re.search(r"<header class=\"site-header\">(.*?)</header>", html, re.S)
    assert found, "the page has no site header"
    return found.group(1)


@pytest.mark.django_db
def test_console_header_shows_the_billers_mark_name_and_current_page(
    admin_client: Client, biller: Biller
) -> None:
    response = admin_client.get(f"/b/{biller.slug}/console/invoices/")
    assert response.status_code == 200
    header = _header(response.content.decode())
    brand = biller_brand(biller)
    assert brand is not None
    assert (
        f'<span class="brand-mark tone-{brand["tone"]}" aria-hidden="true">{brand["monogram"]}</span>'
        in header
    )
    assert biller.legal_name in header
    # the main navigation marks the page the reader is on, once
    nav = re.search(r'<nav class="site-nav".*?</nav>', header, re.S)
    assert nav is not None
    assert nav.group(0).count('aria-current="page"') == 1
    assert re.search(r'href="[^"]*/console/invoices/" aria-current="page"', nav.group(0))
    assert 'aria-controls="site-nav-list"' in nav.group(0) and 'id="site-nav-list"' in nav.group(0)


@pytest.mark.django_db
def test_root_pages_show_the_product_mark(client: Client) -> None:
    html = client.get("/accounts/login/").content.decode()
    header = _header(html)
    assert 'class="brand-mark" src="/static/favicon.svg"' in header
    assert "brand-mark tone-" not in header


@pytest.mark.django_db
def test_language_switch_is_one_click_per_language(client: Client) -> None:
    html = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    form = re.search(
        r'<form action="/i18n/setlang/" method="post" class="lang-switch">(.*?)</form>', html, re.S
    )
    assert form is not None, "no language form"
    buttons = re.findall(r"<button ([^>]*)>([^<]*)</button>", form.group(1))
    assert [(re.search(r'value="(\w+)"', attrs).group(1), label) for attrs, label in buttons] == [  # type: ignore[union-attr]
        ("ja", "日本語"),
        ("en", "English"),
    ]
    pressed = {label: 'aria-pressed="true"' in attrs for attrs, label in buttons}
    assert pressed == {"日本語": True, "English": False}
    assert all('type="submit"' in attrs and 'name="language"' in attrs for attrs, _ in buttons)
    assert "<select" not in form.group(1)

    # one click: the English button's post switches the language and goes back to the page
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/accounts/login/"})
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    html = client.get("/accounts/login/").content.decode()
    assert '<html lang="en">' in html
    assert re.search(r'value="en" lang="en" aria-pressed="true"', html)


@pytest.mark.django_db
def test_frame_has_landmarks_skip_link_and_existing_stylesheets(client: Client) -> None:
    html = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert '<html lang="ja">' in html
    assert '<a class="skip-link" href="#main">' in html
    for landmark in (
        '<header class="site-header">',
        '<nav class="site-nav" aria-label=',
        '<main id="main"',
        "<footer",
    ):
        assert landmark in html
    assert "style=" not in html  # the Content-Security-Policy allows no inline style
    stylesheets = re.findall(r'<link rel="stylesheet" href="/static/([^"]+)">', html)
    assert stylesheets[:5] == [
        "css/vendor/modern-normalize.css",
        "css/foundation/tokens.css",
        "css/foundation/base.css",
        "css/foundation/layout.css",
        "css/foundation/components.css",
    ]
    assert "css/lists.css" in stylesheets
    for path in [*stylesheets, "js/site-nav.js", "favicon.svg", "favicon.ico", "img/apple-touch-icon.png"]:
        if path == "css/lists.css" and finders.find(path) is None:
            continue  # the responsive lists' stylesheet comes with the list templates
        assert finders.find(path), f"{path} is linked from base.html but is not a static file"
    assert finders.find("css/vendor/modern-normalize.LICENSE")
