"""The pay-later page (payeasy.paylater): numbers behind a signed link without an account, refused when
tampered, expired or used on another biller's URL; its status endpoint; and the line paying the request."""

from __future__ import annotations

import datetime
import re
from typing import Any

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from billing import services
from billing.models import Biller, Invoice
from billing.paylater import GRACE_DAYS, token_for
from payeasy import codec
from payeasy.line import LineProcessor, Received
from payeasy.models import LedgerEntry
from payeasy.services.payments import notices_apply
from tests.factories import make_biller, make_invoice
from tests.payeasy import line_helpers as h

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()


def pay_later(biller: Biller, amount: int = 12_800, **data: Any) -> Invoice:
    """A payment request of 佐藤 花子, due in 14 days (tests.factories.make_invoice)."""
    data = {"description": "カタログ通販ご注文", "email": "hanako@example.jp", "name": "佐藤 花子"} | data
    due = TODAY + datetime.timedelta(days=14)
    return make_invoice(biller=biller, kind=Invoice.Kind.PAYMENT_REQUEST, amount=amount, due_date=due, **data)


def page_url(biller: Biller, token: str, suffix: str = "") -> str:
    return f"/b/{biller.slug}/pay/{token}/{suffix}"


def without_path(response: Any, token: str) -> bytes:
    """The body without the token (the language switcher returns to the page's own URL) and the CSRF
    token (different on every render)."""
    body = response.content.replace(token.encode(), b"<TOKEN>")
    return re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", body)


@pytest.fixture
def line_biller() -> Biller:
    biller = h.line_biller()
    h.send(h.open_day(biller))
    return biller


def test_the_page_shows_the_numbers_without_an_account(client: Client, biller: Biller) -> None:
    invoice = pay_later(biller, external_id="order-7")
    response = client.get(page_url(biller, token_for(invoice)))
    assert response.status_code == 200
    page = response.content.decode()
    for text in (
        biller.payee_number,
        invoice.customer_number,
        invoice.confirmation_number,
        "12,800",
        (TODAY + datetime.timedelta(days=14)).isoformat(),
        "order-7",
        "js/live-status.js",
    ):
        assert text in page, text
    assert 'id="invoice-status"' in page and 'role="status"' in page and 'aria-live="polite"' in page
    assert 'data-status="published"' in page
    assert f'data-status-url="/b/{biller.slug}/pay/{token_for(invoice)}/status/"' in page
    assert "atm-limit" not in page  # ¥12,800: no cash limit note
    assert "no-store" in response["Cache-Control"] and "noindex" in response["X-Robots-Tag"]


def test_over_the_atm_cash_limit_says_so(client: Client, biller: Biller) -> None:
    invoice = pay_later(biller, amount=150_000)
    page = client.get(page_url(biller, token_for(invoice))).content.decode()
    assert "atm-limit" in page and "100,000" in page


def test_tampered_or_made_up_tokens_are_404(client: Client, biller: Biller) -> None:
    invoice = pay_later(biller)
    token = token_for(invoice)
    payload, signature = token.rsplit(":", 1)
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    tokens = [f"{payload}:{flipped}", token[:-3], "not-a-token"]
    responses = [client.get(page_url(biller, t)) for t in tokens]
    assert {r.status_code for r in responses} == {404}
    assert "not valid" in responses[0].content.decode()
    assert invoice.customer_number not in responses[0].content.decode()
    assert len({without_path(r, t) for r, t in zip(responses, tokens, strict=True)}) == 1  # no hint
    status = client.get(page_url(biller, f"{payload}:{flipped}", "status/"))
    assert status.status_code == 404 and status.json()["error"]["code"] == "not_found"


def test_a_token_for_another_invoice_kind_is_refused(client: Client, biller: Biller) -> None:
    plain = make_invoice(biller=biller, number="INV-1", amount=100)
    assert client.get(page_url(biller, token_for(plain))).status_code == 404


def test_expired_link_is_410(client: Client, biller: Biller, monkeypatch: pytest.MonkeyPatch) -> None:
    invoice = pay_later(biller)
    token = token_for(invoice)
    last_day = invoice.due_date + datetime.timedelta(days=GRACE_DAYS)
    monkeypatch.setattr("billing.paylater.timezone.localdate", lambda: last_day)
    assert client.get(page_url(biller, token)).status_code == 200  # still on its last day
    monkeypatch.setattr("billing.paylater.timezone.localdate", lambda: last_day + datetime.timedelta(days=1))
    response = client.get(page_url(biller, token))
    assert response.status_code == 410
    assert "expired" in response.content.decode() and invoice.customer_number not in response.content.decode()
    status = client.get(page_url(biller, token, "status/"))
    assert status.status_code == 410 and status.json()["error"]["code"] == "gone"


def test_a_token_of_another_biller_is_refused(client: Client, biller: Biller) -> None:
    other = make_biller()
    theirs = pay_later(other)
    token = token_for(theirs)
    assert client.get(page_url(other, token)).status_code == 200
    on_mine = client.get(page_url(biller, token))
    made_up = client.get(page_url(biller, "not-a-token"))
    assert on_mine.status_code == made_up.status_code == 404
    # exactly like a link that never existed
    assert without_path(on_mine, token) == without_path(made_up, "not-a-token")
    assert client.get(page_url(biller, token, "status/")).status_code == 404
    assert client.get(page_url(biller, token, "events/")).status_code == 404


def test_status_endpoint_and_events_without_redis(client: Client, biller: Biller) -> None:
    invoice = pay_later(biller)
    status = client.get(page_url(biller, token_for(invoice), "status/"))
    assert status.status_code == 200
    assert status.json() == {
        "invoice": invoice.pk,
        "status": "published",
        "label": "Published",
        "message": "",
        "paid_at": None,
    }
    with override_settings(REDIS_URL=""):
        assert client.get(page_url(biller, token_for(invoice), "events/")).status_code == 404


def test_cancelled_request_says_so(client: Client, biller: Biller) -> None:
    invoice = pay_later(biller)
    services.payment_request_cancel(actor=None, biller=biller, invoice=invoice)
    page = client.get(page_url(biller, token_for(invoice))).content.decode()
    assert 'data-status="cancelled"' in page and invoice.confirmation_number not in page


def test_the_line_pays_a_payment_request_and_the_page_turns_paid(client: Client, line_biller: Biller) -> None:
    invoice = pay_later(line_biller)
    token = token_for(invoice)
    # the inquiry (照会) answers the request's amount like any bill's
    (answer,) = LineProcessor().process([Received(body=h.body(h.inquiry(line_biller, invoice)))])
    assert answer.body is not None
    parsed = codec.parse_body(answer.body)
    assert (parsed.message_type, parsed.response_code) == ("1110", "0000")
    assert parsed.elements[4] == invoice.total == 12_800
    h.send(h.payment(line_biller, invoice))
    assert notices_apply().applied == 1
    invoice.refresh_from_db()
    assert invoice.status == "paid" and invoice.paid_at is not None
    assert list(LedgerEntry.objects.values_list("outcome", "amount")) == [("paid", 12_800)]
    status = client.get(page_url(line_biller, token, "status/")).json()
    assert status["status"] == "paid" and status["paid_at"] is not None and status["message"]
    page = client.get(page_url(line_biller, token)).content.decode()
    assert 'data-status="paid"' in page and "js/live-status.js" not in page
