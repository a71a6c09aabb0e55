"""The work queue pages (reconciliation.views.queue): the findings list with its filters and ages, one
finding's page and its action endpoints; tenancy and the operators' read-only role."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from billing.models import Biller, Invoice, InvoicePayment, Membership
from payeasy.models import LedgerEntry
from payeasy.services.payments import notices_apply
from reconciliation.calendar import business_day_add
from reconciliation.models import Action, Finding, Refund
from tests import factories
from tests.payeasy import line_helpers as h

pytestmark = pytest.mark.django_db

DAY = datetime.date(2026, 11, 26)
ACTIONS = ("match", "refund", "write-off", "reopen")


def console(biller: Biller, path: str = "") -> str:
    return f"/b/{biller.slug}/console/{path}"


def make_finding(biller: Biller, key: str, *, days_old: int = 0, **fields: Any) -> Finding:
    data: dict[str, Any] = {
        "kind": Finding.Kind.COUNTER_MISMATCH,
        "processing_date": DAY,
        "amount": 1000,
        "found_at": timezone.now() - datetime.timedelta(days=days_old),
    }
    data.update(fields)
    return Finding.objects.create(biller=biller, key=key, **data)


def logged_in(client: Client, biller: Biller, role: str = Membership.Role.ADMIN) -> Client:
    client.force_login(factories.make_member(biller, role=role))
    return client


@pytest.fixture
def line_biller() -> Biller:
    return h.open_line_biller()


def double_payment(biller: Biller) -> tuple[Finding, Invoice]:
    invoice = h.published_invoice(biller, price=3000)
    h.send(h.payment(biller, invoice, channel="01"), h.payment(biller, invoice, channel="01"))
    notices_apply()
    entry = LedgerEntry.objects.get(outcome="double_payment")
    finding = Finding.objects.create(
        biller=biller,
        key=f"double:{entry.pk}",
        kind=Finding.Kind.DOUBLE_PAYMENT,
        processing_date=DAY,
        amount=entry.amount,
        bank_code="0001",
        invoice=invoice,
        entry_id=entry.pk,
        links={"entries": [entry.pk], "notices": [entry.notice_id]},
        facts={"payments": 2, "standing": 6600},
    )
    return finding, invoice


def refund_post(**change: str) -> dict[str, str]:
    data = {
        "refund-bank_code": "0001",
        "refund-branch_code": "001",
        "refund-account_type": "1",
        "refund-account_number": "1234567",
        "refund-holder_kana": "ヤマダ　タロウ",
        "refund-transfer_date": business_day_add(timezone.localdate(), 1).isoformat(),
    }
    data.update(change)
    return data


# --- the list ------------------------------------------------------------------------------------------


def test_queue_lists_open_findings_oldest_first_with_age_counts(biller: Biller, client: Client) -> None:
    logged_in(client, biller)
    make_finding(biller, "new", days_old=0, amount=100)
    make_finding(biller, "week", days_old=5, amount=200, bank_code="0001")
    make_finding(biller, "old", days_old=40, amount=300, kind=Finding.Kind.DEPOSIT_SHORTFALL)
    make_finding(biller, "closed", days_old=10, state=Finding.State.WRITTEN_OFF)
    other = factories.make_biller()
    make_finding(other, "theirs", amount=999_999)
    response = client.get(console(biller, "findings/"))
    assert response.status_code == 200
    rows = [r.finding.key for r in response.context["rows"]]
    assert rows == ["old", "week", "new"]  # open only, oldest first; never the other tenant's
    counts = {b.key: n for b, n in response.context["counts"]}
    assert counts == {"0-2": 1, "3-7": 1, "8-30": 0, "31+": 1}
    body = response.content.decode()
    assert "999,999" not in body and "Deposit shortfall" in body and "0001" in body
    ages = [r.age_days for r in response.context["rows"]]
    assert ages == [40, 5, 0]


@pytest.mark.parametrize(
    ("query", "keys"),
    [
        ("state=all", ["old", "closed", "week", "new"]),
        ("state=written_off", ["closed"]),
        ("kind=deposit_shortfall", ["old"]),
        ("amount_min=150&amount_max=250", ["week"]),
        ("age=3-7", ["week"]),
        ("age=31%2B", ["old"]),
        ("date_from=2026-11-20&date_to=2026-11-25", ["new"]),
    ],
)
def test_queue_filters(biller: Biller, client: Client, query: str, keys: list[str]) -> None:
    logged_in(client, biller)
    make_finding(biller, "new", days_old=0, amount=100, processing_date=datetime.date(2026, 11, 24))
    make_finding(biller, "week", days_old=5, amount=200)
    make_finding(biller, "old", days_old=40, amount=300, kind=Finding.Kind.DEPOSIT_SHORTFALL)
    make_finding(biller, "closed", days_old=10, state=Finding.State.WRITTEN_OFF)
    response = client.get(console(biller, f"findings/?{query}"))
    assert response.status_code == 200
    assert [r.finding.key for r in response.context["rows"]] == keys


def test_queue_rejects_a_bad_filter(biller: Biller, client: Client) -> None:
    logged_in(client, biller)
    response = client.get(console(biller, "findings/?amount_min=500&amount_max=100&kind=nonsense"))
    assert response.status_code == 400
    assert response.context["page"] is None
    assert set(response.context["form"].errors) == {"kind", "amount_max"}


# --- one finding ---------------------------------------------------------------------------------------


def test_detail_shows_everything_and_the_forms_to_an_admin(line_biller: Biller, client: Client) -> None:
    logged_in(client, line_biller)
    finding, invoice = double_payment(line_biller)
    response = client.get(console(line_biller, f"findings/{finding.pk}/"))
    assert response.status_code == 200
    body = response.content.decode()
    assert f'href="{console(line_biller, f"invoices/{invoice.pk}/")}"' in body
    assert f"Entry {finding.entry_id}" in body
    assert "<dt>standing</dt><dd>6600</dd>" in body  # the facts, as a definition list
    assert set(response.context["forms"]) == {"match", "refund", "write_off"}
    for action in ("match", "refund", "write-off"):
        assert f'action="{console(line_biller, f"findings/{finding.pk}/{action}/")}"' in body
    assert 'list="bank-directory"' in body and '<datalist id="bank-directory">' in body


def test_an_operator_sees_no_forms_and_cannot_post(line_biller: Biller, client: Client) -> None:
    logged_in(client, line_biller, role=Membership.Role.OPERATOR)
    finding, _invoice = double_payment(line_biller)
    response = client.get(console(line_biller, f"findings/{finding.pk}/"))
    assert response.status_code == 200
    assert response.context["forms"] == {}
    body = response.content.decode()
    for action in ACTIONS:
        assert f"findings/{finding.pk}/{action}/" not in body
    for action in ACTIONS:
        post = client.post(console(line_biller, f"findings/{finding.pk}/{action}/"), refund_post())
        assert post.status_code == 403
    assert Action.objects.count() == 0


def test_another_tenants_finding_is_404_for_the_page_and_every_action(
    line_biller: Biller, client: Client
) -> None:
    finding, _invoice = double_payment(line_biller)
    other = factories.make_biller()
    logged_in(client, other)
    assert client.get(console(other, f"findings/{finding.pk}/")).status_code == 404
    for action in ACTIONS:
        response = client.post(
            console(other, f"findings/{finding.pk}/{action}/"), refund_post(**{"write_off-reason": "x"})
        )
        assert response.status_code == 404
    assert Action.objects.count() == 0
    # and through its own biller's address the user is no member: 404 as well
    assert client.get(console(line_biller, f"findings/{finding.pk}/")).status_code == 404


def test_refund_post_redirects_to_the_queue_and_the_finding_leaves_it(
    line_biller: Biller, client: Client
) -> None:
    logged_in(client, line_biller)
    finding, _invoice = double_payment(line_biller)
    response = client.post(console(line_biller, f"findings/{finding.pk}/refund/"), refund_post(), follow=True)
    assert response.redirect_chain == [(console(line_biller, "findings/"), 302)]
    assert "3,300" in response.content.decode()  # the message
    assert finding.key not in [r.finding.key for r in response.context["rows"]]
    refund = Refund.objects.get()
    assert (refund.holder_kana, refund.account_number) == ("ﾔﾏﾀﾞ ﾀﾛｳ", "1234567")
    finding.refresh_from_db()
    assert finding.state == Finding.State.REFUNDED


def test_refund_errors_render_next_to_their_fields(line_biller: Biller, client: Client) -> None:
    logged_in(client, line_biller)
    finding, _invoice = double_payment(line_biller)
    response = client.post(
        console(line_biller, f"findings/{finding.pk}/refund/"),
        refund_post(**{"refund-branch_code": "998", "refund-holder_kana": "山田"}),
    )
    assert response.status_code == 400
    form = response.context["forms"]["refund"]
    assert set(form.errors) == {"branch_code", "holder_kana"}
    assert "position 1" in form.errors["holder_kana"][0]
    body = response.content.decode()
    assert 'id="id_refund-holder_kana_error"' in body or "errorlist" in body
    assert response.context["forms"]["match"].is_bound is False  # the other forms stay as they were
    assert Refund.objects.count() == 0 and Action.objects.count() == 0


def test_match_by_invoice_number(line_biller: Biller, client: Client) -> None:
    logged_in(client, line_biller)
    invoice = h.published_invoice(line_biller, price=3000)
    h.send(h.payment(line_biller, invoice, customer_number="77"))
    notices_apply()
    entry = LedgerEntry.objects.get()
    finding = Finding.objects.create(
        biller=line_biller,
        key=f"provisional:{entry.pk}",
        kind=Finding.Kind.PROVISIONAL,
        detail=entry.reason,
        processing_date=DAY,
        amount=entry.amount,
        entry_id=entry.pk,
    )
    url = console(line_biller, f"findings/{finding.pk}/match/")
    missing = client.post(url, {"match-invoice_number": "NOPE-1"})
    assert missing.status_code == 400 and "invoice_number" in missing.context["forms"]["match"].errors
    other = factories.make_biller()
    theirs = factories.make_invoice(biller=other, amount=3000, number="THEIRS-1")
    refused = client.post(
        url, {"match-invoice_number": theirs.number}
    )  # another tenant's number: unknown here
    assert refused.status_code == 400
    response = client.post(url, {"match-invoice_number": f" {invoice.number} "})
    assert response.status_code == 302 and response["Location"] == console(line_biller, "findings/")
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert InvoicePayment.objects.get(invoice=invoice).outcome == "paid"
    again = client.post(url, {"match-invoice_number": invoice.number})
    assert again.status_code == 400
    assert "not open" in " ".join(again.context["forms"]["match"].non_field_errors())
    assert Action.objects.count() == 1


def test_match_to_a_paid_invoice_shows_the_refusal_on_the_field(line_biller: Biller, client: Client) -> None:
    logged_in(client, line_biller)
    finding, invoice = double_payment(line_biller)
    response = client.post(
        console(line_biller, f"findings/{finding.pk}/match/"), {"match-invoice_number": invoice.number}
    )
    assert response.status_code == 400
    assert "already paid" in response.context["forms"]["match"].errors["invoice_number"][0]
    assert Action.objects.count() == 0


def test_write_off_then_reopen(biller: Biller, client: Client) -> None:
    logged_in(client, biller)
    finding = make_finding(biller, "counter")
    empty = client.post(console(biller, f"findings/{finding.pk}/write-off/"), {"write_off-reason": ""})
    assert empty.status_code == 400 and "reason" in empty.context["forms"]["write_off"].errors
    done = client.post(
        console(biller, f"findings/{finding.pk}/write-off/"), {"write_off-reason": "counted twice"}
    )
    assert done.status_code == 302
    page = client.get(console(biller, f"findings/{finding.pk}/"))
    assert set(page.context["forms"]) == {"reopen"} and "counted twice" in page.content.decode()
    back = client.post(console(biller, f"findings/{finding.pk}/reopen/"), {"reopen-reason": "not so"})
    assert back.status_code == 302 and back["Location"] == console(biller, f"findings/{finding.pk}/")
    finding.refresh_from_db()
    assert finding.state == Finding.State.OPEN
    assert list(Action.objects.values_list("kind", flat=True)) == ["write_off", "reopen"]


def test_action_endpoints_answer_post_only(biller: Biller, client: Client) -> None:
    logged_in(client, biller)
    finding = make_finding(biller, "counter")
    for action in ACTIONS:
        assert client.get(console(biller, f"findings/{finding.pk}/{action}/")).status_code == 405


def test_a_late_payment_is_matched_to_its_own_bill_suggested_on_the_page(client: Client) -> None:
    biller = h.open_line_biller(late_payment_policy=Biller.LatePaymentPolicy.REFUSE)
    logged_in(client, biller)
    invoice = h.published_invoice(biller, price=3000, due_date=datetime.date(2026, 11, 20))
    h.send(h.payment(biller, invoice))  # paid on 2026-11-26, after the due date: refused, provisional
    notices_apply()
    entry = LedgerEntry.objects.get()
    assert (entry.outcome, entry.reason, entry.invoice_id) == ("provisional", "past_due", invoice.pk)
    finding = Finding.objects.create(
        biller=biller,
        key=f"late:{entry.pk}",
        kind=Finding.Kind.LATE_PAYMENT,
        detail=entry.reason,
        processing_date=DAY,
        amount=entry.amount,
        invoice=invoice,
        entry_id=entry.pk,
    )
    page = client.get(console(biller, f"findings/{finding.pk}/"))
    assert page.context["forms"]["match"]["invoice_number"].value() == invoice.number
    assert "Paid after the due date; the biller refuses late payment" in page.content.decode()  # the detail
    response = client.post(
        console(biller, f"findings/{finding.pk}/match/"), {"match-invoice_number": invoice.number}
    )
    assert response.status_code == 302
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert list(InvoicePayment.objects.filter(invoice=invoice).values_list("outcome", "entry_ref")) == [
        ("provisional", entry.pk),
        ("paid", -Action.objects.get().pk),
    ]
