"""The 情報リンク bank list as a Japanese payer expects it: banks by their proper names with a logo slot, the
demo's contracted banks (みずほ, 三菱UFJ, 三井住友 …) each handed off to the sandbox bank, which plays that
bank on its own site, not inside the portal's frame."""

from __future__ import annotations

import html
import importlib
import re
import unicodedata
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, override_settings

from billing.models import Biller, Customer, CustomerAccount, Invoice
from billing.tenancy import tenant_reverse
from payeasy import selectors
from payeasy.banks import (
    bank_all,
    bank_display_name,
    bank_get,
    bank_logo_url,
    bank_monogram,
    bank_name_matches,
    bank_search,
)
from payeasy.demo import seed_demo
from payeasy.models import ContractedBank, HandoffEndpoint, HandoffKey
from payeasy.sandbox import bank as sandbox
from payeasy.sandbox.bank import LineResult
from payeasy.sandbox.forms import DEMO_LOGIN, DEMO_PASSWORD
from tests.integration.conftest import celery_broker, commserver_factory  # noqa: F401 - fixtures

# --- one display-name function ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("0001", "みずほ銀行"),
        ("0005", "三菱UFJ銀行"),
        ("0009", "三井住友銀行"),
        ("0033", "PayPay銀行"),
        ("0010", "りそな銀行"),
        ("0036", "楽天銀行"),
        ("0039", "auじぶん銀行"),
        ("0288", "三菱UFJ信託銀行"),
        ("9900", "ゆうちょ銀行"),
        ("1344", "城南信用金庫"),
        ("1000", "信金中央金庫"),
        ("2963", "中央労働金庫"),
        ("3000", "農林中央金庫"),
        ("0401", "シティバンク、エヌ・エイ"),  # a foreign bank's own name takes no 銀行
        ("0200", "ワイズ・ペイメンツ・ジャパン"),  # not a bank
    ],
)
def test_display_names_are_the_names_people_know(code: str, name: str) -> None:
    found = bank_get(code)
    assert found is not None
    assert bank_display_name(code) == bank_display_name(found) == found.display_name == name


def test_every_display_name_is_nfkc_normalised_and_the_master_is_left_as_it_is() -> None:
    banks = bank_all()
    for bank in banks:
        shown = bank.display_name
        assert shown == unicodedata.normalize("NFKC", shown) and shown == shown.strip(), bank
        assert "  " not in shown and "　" not in shown
    assert bank_get("0033").name == "ＰａｙＰａｙ"  # type: ignore[union-attr] - the master keeps its text
    assert bank_display_name("0000") == "0000"  # unknown: as given


def test_monogram_logo_and_name_search() -> None:
    assert [bank_monogram(c) for c in ("0001", "0005", "0033", "0039")] == ["み", "三", "P", "A"]
    assert bank_logo_url("0001") == ""
    logos = {"0001": "payeasy/banks/0001.svg", "0005": "https://cdn.example.jp/mufg.svg"}
    with override_settings(PAYEASY_BANK_LOGOS=logos):
        assert bank_logo_url("0001").endswith("/static/payeasy/banks/0001.svg")
        assert bank_logo_url("0005") == "https://cdn.example.jp/mufg.svg"
        assert bank_get("0009").logo_url == ""  # type: ignore[union-attr]
    mufg = bank_get("0005")
    assert mufg is not None
    for query in ("三菱UFJ", "三菱ＵＦＪ", "ufj", "UFJ銀行"):
        assert bank_name_matches(mufg, query), query
    assert not bank_name_matches(mufg, "みずほ") and not bank_name_matches(mufg, " ")
    assert bank_search("PayPay銀行")[0].code == "0033"
    assert bank_search("paypay")[0].code == "0033"


def test_bank_logos_setting_is_read_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    from config.settings import product

    try:
        monkeypatch.setenv(
            "PAYEASY_BANK_LOGOS", "0001=payeasy/banks/0001.svg, 0005=https://cdn.example.jp/m.svg"
        )
        assert importlib.reload(product).PAYEASY_BANK_LOGOS == {
            "0001": "payeasy/banks/0001.svg",
            "0005": "https://cdn.example.jp/m.svg",
        }
        monkeypatch.setenv("PAYEASY_BANK_LOGOS", "mizuho.svg")
        with pytest.raises(ImproperlyConfigured, match="PAYEASY_BANK_LOGOS must be CODE=LOGO"):
            importlib.reload(product)
    finally:
        monkeypatch.undo()
        importlib.reload(product)


# --- the demo: the contracted banks, each handed off to the sandbox bank ----------------------------------


@pytest.fixture
def demo(db: None) -> dict[str, Any]:
    seed_demo()
    toto = Biller.objects.get(biller_code="58191001")
    invoice = Invoice.objects.select_related("biller").get(biller=toto, number="2026-11-000101")
    account = CustomerAccount.objects.get(
        biller=toto,
        customer=Customer.objects.get(biller=toto, code="D-000101"),
        user__email="taro@example.jp",
    )
    client = Client()
    client.force_login(account.user)
    return {"biller": toto, "invoice": invoice, "client": client}


def info_link_banks(biller: Biller) -> list[str]:
    return sorted(
        ContractedBank.objects.filter(biller=biller, allows_info_link=True).values_list(
            "bank_code", flat=True
        )
    )


def test_seed_demo_wires_every_contracted_bank_to_the_sandbox_once(demo: dict[str, Any]) -> None:
    seed_demo()  # again: nothing new
    today = selectors.jst_today()
    toto = demo["biller"]
    midori = Biller.objects.get(biller_code="58192001")
    assert info_link_banks(toto) == ["0001", "0005", "0009", "0033"]
    assert info_link_banks(midori) == ["0001", "0010", "0033", "0036"]
    for biller in (toto, midori):
        assert sorted(b.code for b in selectors.handoff_banks(biller, today)) == info_link_banks(biller)
    for code in ("0001", "0005", "0009", "0010", "0036"):
        endpoint = HandoffEndpoint.objects.get(bank_code=code)
        assert (endpoint.entry_url, endpoint.enabled) == (f"/sandbox-bank/entry/{code}/", True)
        assert HandoffKey.objects.filter(endpoint=endpoint, status="active").count() == 1
        assert sandbox.plays(code)
    assert HandoffEndpoint.objects.get(bank_code="0033").entry_url == "/sandbox-bank/entry/"
    assert not sandbox.plays("0138")  # 横浜銀行: nothing wired
    assert [b.code for b in sandbox.played_banks()] == ["0001", "0005", "0009", "0010", "0036"]


def test_a_bank_with_its_own_entry_keeps_it(db: None) -> None:
    from payeasy.services import handoff as handoff_services

    real = handoff_services.handoff_endpoint_create(
        actor=None, bank_code="0005", entry_url="https://bank.example/in"
    )
    seed_demo()
    real.refresh_from_db()
    assert real.entry_url == "https://bank.example/in" and not real.keys.exists()
    assert not sandbox.plays("0005")


def test_the_chooser_lists_the_contracted_banks_by_name_with_a_logo_slot(demo: dict[str, Any]) -> None:
    invoice = demo["invoice"]
    url = tenant_reverse(invoice.biller, "portal:pay", kwargs={"pk": invoice.pk})
    page = demo["client"].get(url).content.decode()
    listing = page.split('<ul class="bank-list"', 1)[1].split("</ul>", 1)[0]
    names = re.findall(r'<span class="bank-choice-name" lang="ja">([^<]+)</span>', listing)
    assert sorted(names) == sorted(["みずほ銀行", "三菱UFJ銀行", "三井住友銀行", "PayPay銀行"])
    for raw in ("ＰａｙＰａｙ", "ﾍﾟｲﾍﾟｲ", "ﾐｽﾞﾎ", "三菱ＵＦＪ"):
        assert raw not in page, raw
    links = re.findall(r'<a class="bank-choice" href="([^"]+)">', listing)
    assert sorted(links) == sorted(
        tenant_reverse(invoice.biller, "portal:pay_handoff", kwargs={"pk": invoice.pk, "bank_code": code})
        for code in ("0001", "0005", "0009", "0033")
    )
    # each row: a decorative logo slot (a monogram here) inside the link, the name, the code
    slots = re.findall(
        r'<span class="bank-logo bank-logo-tone-(\d)" aria-hidden="true">(.*?)</span></span>', listing
    )
    assert len(slots) == 4 and all('class="bank-logo-monogram"' in inner for _tone, inner in slots)
    assert '<span class="bank-logo-monogram" lang="ja">み</span>' in listing
    assert "payeasy/bank-chooser.css" in page and "payeasy/bank-logo.css" in page
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>|style=", page)  # CSP: no inline script or style

    with override_settings(PAYEASY_BANK_LOGOS={"0001": "payeasy/banks/0001.svg"}):
        page = demo["client"].get(url).content.decode()
    assert re.search(
        r'<span class="bank-logo" aria-hidden="true"><img src="[^"]*/static/payeasy/banks/0001.svg" alt=""',
        page,
    )

    searched = demo["client"].get(url, {"q": "三菱UFJ"}).content.decode()
    assert "三菱UFJ銀行" in searched and "みずほ銀行" not in searched
    assert "PayPay銀行" in demo["client"].get(url, {"q": "paypay"}).content.decode()
    assert "三井住友銀行" in demo["client"].get(url, {"q": "ミツイ"}).content.decode()


def test_the_hand_off_names_the_bank_and_goes_to_the_sandbox_playing_it(
    demo: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []

    def pay(**kwargs: Any) -> LineResult:
        calls.append(kwargs)
        return LineResult(code="0000", transaction_key="SANDBOXBNK2026120300000001")

    monkeypatch.setattr(sandbox, "pay", pay)
    invoice = demo["invoice"]
    url = tenant_reverse(invoice.biller, "portal:pay_handoff", kwargs={"pk": invoice.pk, "bank_code": "0001"})
    page = demo["client"].get(url).content.decode()
    assert "みずほ銀行" in re.search(r"<h1>(.*?)</h1>", page).group(1)  # type: ignore[union-attr]
    action = re.search(r'<form method="post" action="([^"]+)" id="handoff-form"', page)
    envelope = re.search(r'name="envelope" value="([^"]+)"', page)
    assert action and envelope and action.group(1) == "/sandbox-bank/entry/0001/"

    bank_site = Client()
    entry = bank_site.post(action.group(1), {"envelope": html.unescape(envelope.group(1))})
    text = entry.content.decode()
    assert entry.status_code == 200 and invoice.customer_number in text
    assert '<span class="bank-brand-name" lang="ja">みずほ銀行</span>' in text
    state = html.unescape(re.search(r'name="state" value="([^"]+)"', text).group(1))  # type: ignore[union-attr]
    confirm = bank_site.post(
        "/sandbox-bank/login/", {"state": state, "login_id": DEMO_LOGIN, "password": DEMO_PASSWORD}
    )
    confirm_text = confirm.content.decode()
    assert confirm.status_code == 200 and "みずほ銀行" in confirm_text
    paid_state = html.unescape(re.search(r'name="state" value="([^"]+)"', confirm_text).group(1))  # type: ignore[union-attr]
    response = bank_site.post("/sandbox-bank/pay/", {"state": paid_state, "pay": "1"})
    assert response.status_code == 303 and response["Location"].endswith("?returned=1")
    assert len(calls) == 1 and calls[0]["as_bank"] == "0001" and calls[0]["channel"] == "05"
    assert calls[0]["customer_number"] == invoice.customer_number


def test_the_sandbox_refuses_a_bank_it_does_not_play(demo: dict[str, Any]) -> None:
    response = Client().post("/sandbox-bank/entry/0138/", {"envelope": "v1.x.y.z"})
    assert response.status_code == 404 and 'data-refusal="unknown_bank"' in response.content.decode()
    assert Client().post("/sandbox-bank/entry/abcd/", {"envelope": "x"}).status_code == 404
    # an envelope sealed for みずほ銀行 does not open at the sandbox's own entry (another bank's key)
    invoice = demo["invoice"]
    url = tenant_reverse(invoice.biller, "portal:pay_handoff", kwargs={"pk": invoice.pk, "bank_code": "0001"})
    page = demo["client"].get(url).content.decode()
    envelope = html.unescape(re.search(r'name="envelope" value="([^"]+)"', page).group(1))  # type: ignore[union-attr]
    refused = Client().post("/sandbox-bank/entry/", {"envelope": envelope})
    assert refused.status_code == 400 and 'data-refusal="unknown_key"' in refused.content.decode()


# --- the sandbox bank's own frame -------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/sandbox-bank/", "/sandbox-bank/atm/"])
def test_the_sandbox_bank_has_its_own_frame_not_the_portals(path: str, admin_client: Client) -> None:
    for client in (Client(), admin_client):  # logged in to the portal or not: the bank's header only
        response = client.get(path)
        page = response.content.decode()
        assert response.status_code == 200
        assert re.search(r'<html lang="(ja|en)">', page)
        assert '<a class="skip-link" href="#main">' in page and '<main id="main" tabindex="-1">' in page
        assert '<header class="bank-header">' in page and "PayPay銀行" in page
        assert "site-header" not in page and "lang-select" not in page and "/accounts/logout/" not in page
        assert "Log out" not in page and "Staff console" not in page
        assert "css/portal.css" not in page and "payeasy/sandbox-bank.css" in page
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>|style=", page)
    home = Client().get("/sandbox-bank/").content.decode()
    assert 'aria-current="page">Internet banking' in home


# --- over a real commserver: the payment comes from the bank the sandbox played ---------------------------


@pytest.fixture
def live_line(celery_broker: dict[str, str], commserver_factory: Any) -> Any:  # noqa: F811
    server = commserver_factory(**celery_broker)
    with override_settings(COMMSERVER_HOST="127.0.0.1", COMMSERVER_PORT=server.port):
        yield server


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_playing_mizuho_pays_over_the_line_as_mizuho(live_line: Any) -> None:
    from payeasy.models import Notice
    from payeasy.services import payments

    seed_demo()
    toto = Biller.objects.get(biller_code="58191001")
    invoice = Invoice.objects.select_related("biller").get(biller=toto, number="2026-11-000102")
    account = CustomerAccount.objects.filter(biller=toto, customer=invoice.customer).first()
    if account is None:  # 佐藤 花子 has no portal login in the demo: give her one
        from tests.factories import make_portal_account

        account = make_portal_account(toto, invoice.customer)
    portal = Client()
    portal.force_login(account.user)
    url = tenant_reverse(toto, "portal:pay_handoff", kwargs={"pk": invoice.pk, "bank_code": "0001"})
    page = portal.get(url).content.decode()
    action = re.search(r'<form method="post" action="([^"]+)" id="handoff-form"', page).group(1)  # type: ignore[union-attr]
    envelope = html.unescape(re.search(r'name="envelope" value="([^"]+)"', page).group(1))  # type: ignore[union-attr]
    bank_site = Client()
    entry = bank_site.post(action, {"envelope": envelope}).content.decode()
    state = html.unescape(re.search(r'name="state" value="([^"]+)"', entry).group(1))  # type: ignore[union-attr]
    confirm = bank_site.post(
        "/sandbox-bank/login/", {"state": state, "login_id": DEMO_LOGIN, "password": DEMO_PASSWORD}
    )
    paid_state = html.unescape(re.search(r'name="state" value="([^"]+)"', confirm.content.decode()).group(1))  # type: ignore[union-attr]
    response = bank_site.post("/sandbox-bank/pay/", {"state": paid_state, "pay": "1"})
    assert response.status_code == 303, response.content.decode()[:3000]
    notice = Notice.objects.get(customer_number=invoice.customer_number)
    assert (notice.channel, notice.bank_code, notice.amount) == ("05", "0001", invoice.total)
    payments.notices_apply()
    assert Invoice.objects.get(pk=invoice.pk).status == "paid"
    # and the chooser now lists みずほ銀行 first: this biller's payers have used it
    first = selectors.handoff_banks(toto, selectors.jst_today())[0]
    assert (first.code, first.uses) == ("0001", 1)
