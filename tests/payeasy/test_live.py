"""Live status of an invoice (payeasy.live): the JSON the page polls and the server-sent events fed by
Redis; only the invoice's own customer (or the biller's console) may watch it."""

from __future__ import annotations

import datetime
import json
import os
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from billing.models import Biller, Customer, Invoice
from payeasy import live
from tests.factories import make_biller, make_customer, make_invoice, make_member, make_portal_account

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"


def my(biller: Biller, path: str) -> str:
    return f"/b/{biller.slug}/my/{path}"


def published(biller: Biller, customer: Customer, number: str) -> Invoice:
    """Issued today, due in 20 days, 1,200 yen plus tax (tests.factories.make_invoice)."""
    today = timezone.localdate()
    return make_invoice(
        biller=biller,
        customer=customer,
        number=number,
        amount=1200,
        issue_date=today,
        due_date=today + datetime.timedelta(days=20),
    )


def portal_client(biller: Biller, customer: Customer) -> Client:
    account = make_portal_account(biller, customer, password=PASSWORD)
    client = Client()
    client.force_login(account.user)
    return client


def mark_paid(invoice: Invoice) -> None:
    Invoice.objects.filter(pk=invoice.pk).update(status=Invoice.Status.PAID, paid_at=timezone.now())


def test_status_json_for_the_invoices_customer_only() -> None:
    biller, other_biller = make_biller(), make_biller()
    alice, bob = make_customer(biller), make_customer(biller)
    invoice = published(biller, alice, "LIVE-1")
    owner = portal_client(biller, alice)

    response = owner.get(my(biller, f"invoices/{invoice.pk}/status/"), HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert response.json()["status"] == "published"
    assert response["Cache-Control"].startswith("max-age=0")

    mark_paid(invoice)
    body = owner.get(my(biller, f"invoices/{invoice.pk}/status/")).json()
    assert body["status"] == "paid" and body["paid_at"] and body["message"]

    # another customer of the same biller, a customer of another biller, nobody: the invoice is not there
    assert portal_client(biller, bob).get(my(biller, f"invoices/{invoice.pk}/status/")).status_code == 404
    stranger = portal_client(other_biller, make_customer(other_biller))
    assert stranger.get(my(other_biller, f"invoices/{invoice.pk}/status/")).status_code == 404
    assert stranger.get(my(biller, f"invoices/{invoice.pk}/status/")).status_code == 404
    assert Client().get(my(biller, f"invoices/{invoice.pk}/status/")).status_code == 404


def test_console_member_may_watch_its_billers_invoice() -> None:
    biller, other_biller = make_biller(), make_biller()
    invoice = published(biller, make_customer(biller), "LIVE-2")
    member = Client()
    member.force_login(make_member(biller))
    assert member.get(my(biller, f"invoices/{invoice.pk}/status/")).status_code == 200
    outsider = Client()
    outsider.force_login(make_member(other_biller))
    assert outsider.get(my(biller, f"invoices/{invoice.pk}/status/")).status_code == 404


def test_detail_page_offers_the_live_status(settings: Any) -> None:
    biller = make_biller()
    customer = make_customer(biller)
    invoice = published(biller, customer, "LIVE-3")
    client = portal_client(biller, customer)

    settings.REDIS_URL = ""
    page = client.get(my(biller, f"invoices/{invoice.pk}/")).content.decode()
    assert f'data-status-url="{my(biller, f"invoices/{invoice.pk}/status/")}"' in page
    assert "data-events-url" not in page  # the embedded default polls
    assert "js/live-status.js" in page

    settings.REDIS_URL = "redis://127.0.0.1:6379/15"
    page = client.get(my(biller, f"invoices/{invoice.pk}/")).content.decode()
    assert f'data-events-url="{my(biller, f"invoices/{invoice.pk}/events/")}"' in page


def test_events_need_redis(settings: Any) -> None:
    settings.REDIS_URL = ""
    biller = make_biller()
    customer = make_customer(biller)
    invoice = published(biller, customer, "LIVE-4")
    response = portal_client(biller, customer).get(my(biller, f"invoices/{invoice.pk}/events/"))
    assert response.status_code == 404


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="server-sent events need Redis (REDIS_URL)")
def test_events_stream_the_status_and_end_when_paid(settings: Any) -> None:
    settings.REDIS_URL = os.environ["REDIS_URL"]
    live._redis.cache_clear()
    biller = make_biller()
    customer = make_customer(biller)
    invoice = published(biller, customer, "LIVE-5")
    other = published(biller, customer, "LIVE-6")

    response = portal_client(biller, customer).get(my(biller, f"invoices/{invoice.pk}/events/"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/event-stream")
    stream = iter(response.streaming_content)

    def next_event() -> dict[str, Any]:
        while True:
            chunk = next(stream).decode()
            if "event: status" in chunk:
                data = chunk.split("data: ", 1)[1].split("\n", 1)[0]
                return dict(json.loads(data))

    assert next_event()["status"] == "published"  # at once, and subscribed from here on

    # an event for another invoice wakes nobody here; the paid one does, read back from the database
    mark_paid(other)
    live._redis().publish(live.invoice_channel(other.pk), json.dumps({"type": "invoice.paid"}))
    mark_paid(invoice)
    live._redis().publish(live.invoice_channel(invoice.pk), json.dumps({"type": "invoice.paid"}))
    paid = next_event()
    assert paid["invoice"] == invoice.pk and paid["status"] == "paid"
    with pytest.raises(StopIteration):  # the stream ends once the invoice is paid
        next(stream)
    live._redis.cache_clear()
