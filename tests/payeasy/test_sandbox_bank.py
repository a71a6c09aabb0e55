"""The sandbox bank: the 情報リンク entry (refusals, login, pay, return) and the ATM; and, against a real
commserver over TCP, that its payments are real 1100/1200 messages the server stores."""

from __future__ import annotations

import datetime
import html
import os
import re
import subprocess
import sys
from typing import Any

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.utils import timezone

from billing.models import AuditEntry, Biller, Invoice
from billing.tenancy import tenant_reverse
from payeasy import handoff
from payeasy.models import HandoffEndpoint, LedgerEntry, Message, Notice
from payeasy.sandbox import bank
from payeasy.sandbox.bank import LineResult
from payeasy.sandbox.forms import DEMO_LOGIN, DEMO_PASSWORD
from payeasy.services import handoff as handoff_services
from tests.factories import make_contract, make_customer, make_portal_account
from tests.integration.conftest import ROOT, celery_broker, commserver_factory  # noqa: F401 - fixtures
from tests.payeasy.line_helpers import published_invoice

SANDBOX = settings.PAYEASY_SANDBOX_BANK_CODE


def sandbox_bank() -> HandoffEndpoint:
    endpoint = handoff_services.handoff_endpoint_create(
        actor=None, bank_code=SANDBOX, entry_url="/sandbox-bank/entry/"
    )
    handoff_services.handoff_key_create(actor=None, endpoint=endpoint)
    return endpoint


def payer_setup(biller: Biller, price: int = 5000) -> dict[str, Any]:
    """A contract with the sandbox bank (ATM, 情報リンク), its endpoint and key, a payer and a bill."""
    make_contract(biller, SANDBOX, channels=("02", "05"))
    sandbox_bank()
    customer = make_customer(biller)
    account = make_portal_account(biller, customer)
    invoice = published_invoice(biller, price=price, customer=customer)
    portal = Client()
    portal.force_login(account.user)
    return {"invoice": invoice, "portal": portal, "customer": customer}


def envelope_from_portal(portal: Client, invoice: Invoice) -> tuple[str, str]:
    """The hand-off page's form: its action and envelope, as the browser would post them."""
    url = tenant_reverse(
        invoice.biller, "portal:pay_handoff", kwargs={"pk": invoice.pk, "bank_code": SANDBOX}
    )
    page = portal.get(url).content.decode()
    action = re.search(r'<form method="post" action="([^"]+)" id="handoff-form"', page)
    envelope = re.search(r'name="envelope" value="([^"]+)"', page)
    assert action and envelope, page[:3000]
    return html.unescape(action.group(1)), html.unescape(envelope.group(1))


def state_of(page: str) -> str:
    match = re.search(r'name="state" value="([^"]+)"', page)
    assert match, page[:3000]
    return html.unescape(match.group(1))


def sealed(invoice: Invoice, **kwargs: Any) -> str:
    detail = tenant_reverse(invoice.biller, "portal:invoice_detail", kwargs={"pk": invoice.pk})
    return handoff.handoff_seal(
        invoice=Invoice.objects.select_related("biller").get(pk=invoice.pk),
        bank_code=SANDBOX,
        return_url=f"http://testserver{detail}?returned=1",
        **kwargs,
    ).envelope


def logged_in_state(client: Client, invoice: Invoice) -> str:
    """Hand ``invoice`` over to the sandbox bank and log in: the state of the confirmation page."""
    entry = client.post("/sandbox-bank/entry/", {"envelope": sealed(invoice)})
    confirm = client.post(
        "/sandbox-bank/login/",
        {"state": state_of(entry.content.decode()), "login_id": DEMO_LOGIN, "password": DEMO_PASSWORD},
    )
    return state_of(confirm.content.decode())


def refusal(response: Any) -> str:
    match = re.search(r'data-refusal="([a-z_]+)"', response.content.decode())
    return match.group(1) if match else ""


# --- the entry: what it refuses -----------------------------------------------------------------------


@pytest.mark.django_db
def test_entry_refuses_tampered_expired_and_replayed_with_a_clear_message(
    biller: Biller, client: Client
) -> None:
    setup = payer_setup(biller)
    invoice = setup["invoice"]
    good = sealed(invoice)
    head, ciphertext = good.rsplit(".", 1)
    tampered = f"{head}.{ciphertext[:8]}{'A' if ciphertext[8] != 'A' else 'B'}{ciphertext[9:]}"
    response = client.post("/sandbox-bank/entry/", {"envelope": tampered})
    assert (response.status_code, refusal(response)) == (400, "tampered")
    assert "altered" in response.content.decode() and "Tampered hand-off" in response.content.decode()

    old = sealed(invoice, now=timezone.now() - datetime.timedelta(minutes=31))
    response = client.post("/sandbox-bank/entry/", {"envelope": old})
    assert (response.status_code, refusal(response)) == (400, "expired")
    assert "expired" in response.content.decode() and "30 minutes" in response.content.decode()

    assert client.post("/sandbox-bank/entry/", {"envelope": good}).status_code == 200
    response = client.post("/sandbox-bank/entry/", {"envelope": good})
    assert (response.status_code, refusal(response)) == (400, "replayed")
    assert "already used" in response.content.decode()

    response = client.post("/sandbox-bank/entry/", {"envelope": "not an envelope"})
    assert (response.status_code, refusal(response)) == (400, "malformed")
    response = client.post("/sandbox-bank/entry/", {"envelope": good.replace(good.split(".")[1], "0033-x")})
    assert (response.status_code, refusal(response)) == (400, "unknown_key")
    assert client.get("/sandbox-bank/entry/").status_code == 405


@pytest.mark.django_db
def test_entry_takes_a_cross_site_post_without_a_csrf_token(biller: Biller) -> None:
    setup = payer_setup(biller)
    strict = Client(enforce_csrf_checks=True)
    response = strict.post("/sandbox-bank/entry/", {"envelope": sealed(setup["invoice"])})
    assert response.status_code == 200 and DEMO_LOGIN in response.content.decode()


# --- log in, pay, return (the line mocked; the real one is below) -------------------------------------


@pytest.fixture
def line_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    def pay(**kwargs: Any) -> LineResult:
        calls.append(kwargs)
        return LineResult(code="0000", transaction_key="SANDBOXBNK2026120200000002")

    monkeypatch.setattr(bank, "pay", pay)
    return calls


@pytest.mark.django_db
def test_log_in_pay_and_return(biller: Biller, client: Client, line_calls: list[dict[str, Any]]) -> None:
    setup = payer_setup(biller)
    invoice = setup["invoice"]
    action, envelope = envelope_from_portal(setup["portal"], invoice)
    assert action == "/sandbox-bank/entry/"
    page = client.post(action, {"envelope": envelope})
    text = page.content.decode()
    assert page.status_code == 200
    assert invoice.customer_number in text and "5,500円" in text and invoice.biller.short_name in text
    assert DEMO_LOGIN in text and DEMO_PASSWORD in text  # the demo account is shown
    state = state_of(text)
    wrong = client.post("/sandbox-bank/login/", {"state": state, "login_id": DEMO_LOGIN, "password": "nope"})
    assert wrong.status_code == 400 and "Wrong login ID or password" in wrong.content.decode()
    assert client.post("/sandbox-bank/pay/", {"state": state}).status_code == 400  # not logged in yet
    confirm = client.post(
        "/sandbox-bank/login/", {"state": state, "login_id": DEMO_LOGIN, "password": DEMO_PASSWORD}
    )
    assert confirm.status_code == 200 and "Confirm the payment" in confirm.content.decode()
    paid_state = state_of(confirm.content.decode())
    response = client.post("/sandbox-bank/pay/", {"state": paid_state, "pay": "1"})
    detail = tenant_reverse(biller, "portal:invoice_detail", kwargs={"pk": invoice.pk})
    assert response.status_code == 303 and response["Location"] == f"http://testserver{detail}?returned=1"
    assert line_calls == [
        {
            "biller_code": biller.biller_code,
            "customer_number": invoice.customer_number,
            "confirmation_number": invoice.confirmation_number,
            "amount": 5500,
            "channel": "05",
        }
    ]
    again = client.post("/sandbox-bank/pay/", {"state": paid_state, "pay": "1"})
    assert again.status_code == 409 and len(line_calls) == 1  # one hand-off pays once


@pytest.mark.django_db
def test_the_return_changes_nothing(biller: Biller, line_calls: list[dict[str, Any]]) -> None:
    setup = payer_setup(biller)
    invoice = setup["invoice"]
    detail = tenant_reverse(biller, "portal:invoice_detail", kwargs={"pk": invoice.pk})

    def snapshot() -> tuple:
        return (
            Invoice.objects.get(pk=invoice.pk).status,
            Notice.objects.count(),
            LedgerEntry.objects.count(),
            AuditEntry.objects.count(),
            Message.objects.count(),
        )

    before = snapshot()
    response = setup["portal"].get(detail, {"returned": "1"})
    assert response.status_code == 200
    assert snapshot() == before and before[0] == "published"


@pytest.mark.django_db
def test_a_failed_payment_shows_the_error_and_does_not_redirect(
    biller: Biller, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = payer_setup(biller)
    monkeypatch.setattr(bank, "pay", lambda **kw: LineResult(code="9001"))
    state = logged_in_state(client, setup["invoice"])
    response = client.post("/sandbox-bank/pay/", {"state": state, "pay": "1"})
    assert response.status_code == 502 and "Location" not in response
    assert "9001" in response.content.decode() and "did not go through" in response.content.decode()
    monkeypatch.setattr(bank, "pay", lambda **kw: LineResult(code="0000"))  # try again: it may now
    assert client.post("/sandbox-bank/pay/", {"state": state, "pay": "1"}).status_code == 303


@pytest.mark.django_db
@override_settings(COMMSERVER_HOST="127.0.0.1", COMMSERVER_PORT=9)  # nothing listens there
def test_an_unreachable_commserver_is_an_error_not_a_redirect(biller: Biller, client: Client) -> None:
    setup = payer_setup(biller)
    response = client.post(
        "/sandbox-bank/pay/", {"state": logged_in_state(client, setup["invoice"]), "pay": "1"}
    )
    assert response.status_code == 502 and "Location" not in response
    assert "Cannot reach the communication server" in response.content.decode()


@pytest.mark.django_db
def test_cancel_returns_without_paying(
    biller: Biller, client: Client, line_calls: list[dict[str, Any]]
) -> None:
    setup = payer_setup(biller)
    state = logged_in_state(client, setup["invoice"])
    response = client.post("/sandbox-bank/pay/", {"state": state, "cancel": "1"})
    assert response.status_code == 303 and response["Location"].endswith("?returned=1")
    assert line_calls == []


@pytest.mark.django_db
def test_an_altered_state_is_refused(
    biller: Biller, client: Client, line_calls: list[dict[str, Any]]
) -> None:
    setup = payer_setup(biller)
    entry = client.post("/sandbox-bank/entry/", {"envelope": sealed(setup["invoice"])})
    state = state_of(entry.content.decode())
    response = client.post(
        "/sandbox-bank/login/",
        {"state": state[:-2] + "xx", "login_id": DEMO_LOGIN, "password": DEMO_PASSWORD},
    )
    assert (response.status_code, refusal(response)) == (400, "session")
    assert line_calls == []


# --- the ATM (line mocked) ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_atm_form_inquiry_and_payment(
    biller: Biller, client: Client, monkeypatch: pytest.MonkeyPatch, line_calls: list[dict[str, Any]]
) -> None:
    invoice = published_invoice(biller, price=100_000)
    asked: list[dict[str, Any]] = []

    def inquire(**kwargs: Any) -> LineResult:
        asked.append(kwargs)
        return LineResult(
            code="0000",
            elements={
                4: 110_000,
                10: "20261231",
                11: biller.name_kana,
                12: biller.short_name,
                13: "11月分電気料金",
            },
        )

    monkeypatch.setattr(bank, "inquire", inquire)
    assert client.get("/sandbox-bank/atm/").status_code == 200
    bad = client.post(
        "/sandbox-bank/atm/", {"payee_number": "123", "customer_number": "x", "confirmation_number": ""}
    )
    assert bad.status_code == 400 and asked == []
    numbers = {
        "payee_number": "".join(chr(ord(c) + 0xFEE0) for c in biller.payee_number),  # full-width digits
        "customer_number": invoice.customer_number,
        "confirmation_number": invoice.confirmation_number,
    }
    page = client.post("/sandbox-bank/atm/", numbers)
    text = page.content.decode()
    assert (
        page.status_code == 200 and "110,000円" in text and "2026-12-31" in text and "11月分電気料金" in text
    )
    assert "100,000 yen" in text  # the ATM cash limit
    assert asked == [
        {
            "biller_code": biller.biller_code,
            "customer_number": invoice.customer_number,
            "confirmation_number": invoice.confirmation_number,
        }
    ]
    done = client.post("/sandbox-bank/atm/pay/", {"state": state_of(text), "pay": "1"})
    assert done.status_code == 200 and "SANDBOXBNK2026120200000002" in done.content.decode()
    assert line_calls[0]["channel"] == "02" and line_calls[0]["amount"] == 110_000
    assert client.post("/sandbox-bank/atm/pay/", {"state": state_of(text), "pay": "1"}).status_code == 409


@pytest.mark.django_db
def test_atm_inquiry_refused_says_why(
    biller: Biller, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bank, "inquire", lambda **kw: LineResult(code="B001"))
    response = client.post(
        "/sandbox-bank/atm/",
        {"payee_number": biller.payee_number, "customer_number": "123", "confirmation_number": "456"},
    )
    assert response.status_code == 409 and "no bill with these numbers" in response.content.decode()


# --- settings: never in production --------------------------------------------------------------------


def _settings_probe(**env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PAYEASY_"))}
    base.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_SECRET_KEY="probe-" + "x" * 50,
        DJANGO_ALLOWED_HOSTS="portal.example",
        PAYEASY_RUN_DIR=os.path.join(str(ROOT), ".run", "test"),
        **env,
    )
    code = (
        "import django; django.setup(); from django.conf import settings; from django.urls import reverse, "
        "NoReverseMatch\ntry:\n    reverse('sandbox_bank:home'); mounted = True\nexcept NoReverseMatch:\n"
        "    mounted = False\nprint(settings.PAYEASY_SANDBOX_BANK, mounted)"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=base, capture_output=True, text=True, timeout=60
    )


def test_production_settings_leave_the_sandbox_bank_off_and_refuse_to_turn_it_on() -> None:
    off = _settings_probe()
    assert off.returncode == 0, off.stderr
    assert off.stdout.split() == ["False", "False"]
    refused = _settings_probe(PAYEASY_SANDBOX_BANK="1")
    assert refused.returncode != 0 and "PAYEASY_SANDBOX_BANK" in refused.stderr
    demo = _settings_probe(PAYEASY_DEMO="1")
    assert demo.returncode == 0 and demo.stdout.split() == ["True", "True"]
    assert settings.PAYEASY_SANDBOX_BANK  # the test settings are development settings


# --- against a real commserver over TCP ---------------------------------------------------------------


@pytest.fixture
def live_line(celery_broker: dict[str, str], commserver_factory: Any) -> Any:  # noqa: F811
    server = commserver_factory(**celery_broker)
    with override_settings(COMMSERVER_HOST="127.0.0.1", COMMSERVER_PORT=server.port):
        yield server


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_sandbox_pay_sends_a_real_payment_that_the_commserver_stores(live_line: Any) -> None:
    from payeasy.services import payments

    biller = _line_biller()
    setup = payer_setup(biller, price=7000)
    invoice = setup["invoice"]
    client = Client()
    action, envelope = envelope_from_portal(setup["portal"], invoice)
    entry = client.post(action, {"envelope": envelope})
    confirm = client.post(
        "/sandbox-bank/login/",
        {"state": state_of(entry.content.decode()), "login_id": DEMO_LOGIN, "password": DEMO_PASSWORD},
    )
    response = client.post("/sandbox-bank/pay/", {"state": state_of(confirm.content.decode()), "pay": "1"})
    assert response.status_code == 303, response.content.decode()[:3000]
    assert response["Location"].endswith(f"/my/invoices/{invoice.pk}/?returned=1")
    messages = list(
        Message.objects.order_by("id").values_list("message_type", "response_code", "transaction_key")
    )
    assert [(t, c) for t, c, _k in messages] == [("0800", "0000"), ("1200", "0000")]  # the line was closed
    notice = Notice.objects.get()
    assert notice.transaction_key == messages[1][2] and notice.transaction_key.startswith("SANDBOXBNK")
    assert (notice.channel, notice.bank_code, notice.amount, notice.customer_number) == (
        "05",
        SANDBOX,
        7700,
        invoice.customer_number,
    )
    # the browser's return proves nothing; the stored notice pays the bill
    assert Invoice.objects.get(pk=invoice.pk).status == "published"
    payments.notices_apply()
    assert Invoice.objects.get(pk=invoice.pk).status == "paid"
    entry_row = LedgerEntry.objects.get()
    assert (entry_row.outcome, entry_row.amount) == ("paid", 7700)


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_sandbox_atm_inquires_then_pays_over_the_line(live_line: Any) -> None:
    biller = _line_biller()
    make_contract(biller, SANDBOX, channels=("02", "05"))
    invoice = published_invoice(biller, price=2000)
    client = Client()
    numbers = {
        "payee_number": biller.payee_number,
        "customer_number": invoice.customer_number,
        "confirmation_number": invoice.confirmation_number,
    }
    wrong = client.post(
        "/sandbox-bank/atm/", {**numbers, "confirmation_number": _other(invoice.confirmation_number)}
    )
    assert wrong.status_code == 409 and "B001" in wrong.content.decode()
    page = client.post("/sandbox-bank/atm/", numbers)
    text = page.content.decode()
    assert page.status_code == 200, text[:3000]
    # what the 1110 carried: the names and 料金名 as double-byte (J) fields
    assert (
        "2,200円" in text
        and "2026-12-31" in text
        and "１１月分電気料金" in text
        and biller.short_name in text
    )
    done = client.post("/sandbox-bank/atm/pay/", {"state": state_of(text), "pay": "1"})
    assert done.status_code == 200, done.content.decode()[:3000]
    types = list(Message.objects.order_by("id").values_list("message_type", "response_code"))
    assert types == [("0800", "0000"), ("1100", "B001"), ("1100", "0000"), ("1200", "0000")]
    notice = Notice.objects.get()
    assert (notice.channel, notice.bank_code, notice.amount) == ("02", SANDBOX, 2200)
    assert notice.transaction_key in done.content.decode()


def _line_biller() -> Biller:
    from tests.factories import make_biller

    return make_biller()


def _other(number: str) -> str:
    return f"{(int(number) + 1) % 10 ** len(number):0{len(number)}d}"


@pytest.mark.django_db
def test_seed_demo_sets_up_the_sandbox_bank_once() -> None:
    from payeasy import selectors
    from payeasy.demo import seed_demo
    from payeasy.models import ContractedBank, HandoffKey

    seed_demo()
    seed_demo()
    endpoint = HandoffEndpoint.objects.get(bank_code=SANDBOX)
    assert (endpoint.entry_url, endpoint.enabled) == ("/sandbox-bank/entry/", True)
    assert HandoffKey.objects.filter(endpoint=endpoint, status="active").count() == 1
    for biller in Biller.objects.filter(biller_code__in=["58191001", "58192001"]):
        contract = ContractedBank.objects.get(biller=biller, bank_code=SANDBOX)
        assert contract.allows("05") and contract.allows("02")
        info_link = ContractedBank.objects.filter(biller=biller, allows_info_link=True)
        contracted = sorted(info_link.values_list("bank_code", flat=True))
        assert SANDBOX in contracted and len(contracted) > 1  # the contracted banks are wired to the sandbox
        assert sorted(b.code for b in selectors.handoff_banks(biller, selectors.jst_today())) == contracted


@pytest.mark.django_db
def test_the_beat_task_prunes_expired_nonces(biller: Biller) -> None:
    from payeasy.models import HandoffNonce
    from payeasy.tasks import handoff_nonces_prune

    now = timezone.now()
    HandoffNonce.objects.create(
        nonce="old", bank_code=SANDBOX, kid="k", expires_at=now - datetime.timedelta(hours=1)
    )
    HandoffNonce.objects.create(
        nonce="live", bank_code=SANDBOX, kid="k", expires_at=now + datetime.timedelta(minutes=5)
    )
    assert handoff_nonces_prune.delay().get() == 1
    assert list(HandoffNonce.objects.values_list("nonce", flat=True)) == ["live"]
