"""Outbound webhooks: the outbox written with the ledger, signatures, retries, the delivery log, the console.

The tenant's system is a real HTTP server on 127.0.0.1 in a thread; nothing of httpx is mocked.
"""

from __future__ import annotations

import datetime
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone

from billing.models import AuditEntry, Biller, Invoice, Membership
from payeasy.events import Event
from payeasy.models import LedgerEntry, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from payeasy.services import payments, webhook_endpoints, webhooks
from payeasy.services.payments import notices_apply
from payeasy.webhook_signing import sign, verify_signature
from tests import factories
from tests.payeasy import line_helpers as h
from tests.tenancy import assert_cross_tenant_hidden

pytestmark = pytest.mark.django_db

ALL_EVENTS = [
    "payment.received",
    "payment.provisional",
    "payment.double",
    "payment.reversed",
    "invoice.paid",
    "invoice.payable_again",
]


# --- the tenant's system: a real HTTP server ----------------------------------------------------------


@dataclass
class Request:
    path: str
    headers: Any  # an http.client.HTTPMessage: names looked up case-insensitively
    body: bytes


class Receiver:
    """Answers each POST with the next status of ``answers`` (200 when none is left) and keeps it."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.answers: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append(Request(self.path, self.headers, body))
                status = receiver.answers.pop(0) if receiver.answers else 200
                reply = b'{"received":true}' if status < 300 else b"temporarily unavailable"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Receiver", "test")
                self.send_header("X-Request-Id", "test")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/payeasy"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


send = h.send


@pytest.fixture
def biller() -> Biller:
    """A biller on the line (contracts, day open); also the tenant of ``admin_client``."""
    return h.open_line_biller()


@pytest.fixture
def invoice(biller: Biller) -> Invoice:
    return h.published_invoice(biller, price=3000)


def endpoint_for(biller: Biller, url: str, events: list[str] | None = None) -> tuple[WebhookEndpoint, str]:
    return webhook_endpoints.webhook_endpoint_create(
        actor=None, biller=biller, url=url, description="accounting", event_types=events or ALL_EVENTS
    )


def pay(biller: Biller, invoice: Invoice, **kw: Any) -> None:
    send(h.payment(biller, invoice, **kw))
    notices_apply()


def due_now(delivery: WebhookDelivery) -> None:
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())


# --- the outbox ----------------------------------------------------------------------------------------


def test_an_applied_payment_records_a_delivery_per_subscribed_event_and_no_other_tenants(
    biller: Biller, invoice: Invoice
) -> None:
    mine, _secret = endpoint_for(biller, "https://mine.example.jp/hook", ["payment.received", "invoice.paid"])
    reversals_only, _s = endpoint_for(biller, "https://other.example.jp/hook", ["payment.reversed"])
    other_biller = h.line_biller()
    theirs, _s = endpoint_for(other_biller, "https://theirs.example.jp/hook")
    pay(biller, invoice)
    rows = list(WebhookDelivery.objects.order_by("id"))
    assert [(d.endpoint_id, d.event_type, d.biller_id) for d in rows] == [
        (mine.pk, "payment.received", biller.pk),
        (mine.pk, "invoice.paid", biller.pk),
    ]
    assert not WebhookDelivery.objects.filter(endpoint__in=[reversals_only, theirs]).exists()
    body = json.loads(rows[0].payload)
    assert body["id"] == str(rows[0].event_id) and body["type"] == "payment.received"
    assert body["biller"] == biller.biller_code
    assert body["data"]["invoice"] == invoice.number and body["data"]["invoice_id"] == invoice.pk
    assert body["data"]["amount"] == 3300 and body["data"]["outcome"] == "paid"
    assert rows[0].event_id != rows[1].event_id  # one id per event
    assert all(d.status == "pending" and d.attempts == 0 for d in rows)
    # the other tenant's payment reaches its endpoint only
    pay(other_biller, h.published_invoice(other_biller, price=100))
    assert set(WebhookDelivery.objects.filter(biller=other_biller).values_list("endpoint_id", flat=True)) == {
        theirs.pk
    }


def test_deliveries_commit_or_roll_back_with_the_ledger(biller: Biller, invoice: Invoice) -> None:
    endpoint_for(biller, "https://mine.example.jp/hook")
    send(h.payment(biller, invoice))
    with pytest.raises(RuntimeError), transaction.atomic():
        notices_apply()
        assert LedgerEntry.objects.count() == 1 and WebhookDelivery.objects.count() == 2
        raise RuntimeError("the worker dies before commit")
    assert LedgerEntry.objects.count() == 0 and WebhookDelivery.objects.count() == 0
    notices_apply()
    assert LedgerEntry.objects.count() == 1 and WebhookDelivery.objects.count() == 2


def test_a_failed_batch_records_the_events_of_the_notices_applied_one_by_one(
    biller: Biller, invoice: Invoice, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint_for(biller, "https://mine.example.jp/hook", ["payment.received"])
    other = h.published_invoice(biller, price=100)
    send(h.payment(biller, invoice), h.payment(biller, other))
    real = h.payments_failing_at(monkeypatch, 110)  # the other invoice's notice: 100 yen + tax
    result = notices_apply()
    assert result.applied == 1 and len(result.failed) == 1
    amounts = [json.loads(d.payload)["data"]["amount"] for d in WebhookDelivery.objects.all()]
    assert amounts == [3300]  # the applied payment's event, once; nothing for the one that failed
    monkeypatch.setattr(payments, "_apply_payment", real)
    notices_apply()
    assert sorted(json.loads(d.payload)["data"]["amount"] for d in WebhookDelivery.objects.all()) == [
        110,
        3300,
    ]


def test_recording_costs_one_query_without_endpoints_and_two_with(
    biller: Biller, django_assert_num_queries: Any
) -> None:
    events = [Event("payment.received", biller.pk, None, {"amount": 1}) for _ in range(20)]
    with django_assert_num_queries(1):
        assert webhooks.events_record(events) == 0
    endpoint_for(biller, "https://a.example.jp/hook")
    endpoint_for(biller, "https://b.example.jp/hook")
    with django_assert_num_queries(2):
        assert webhooks.events_record(events) == 40


def test_an_inactive_endpoint_records_nothing(biller: Biller, invoice: Invoice) -> None:
    endpoint, _secret = endpoint_for(biller, "https://mine.example.jp/hook")
    webhook_endpoints.webhook_endpoint_set_active(
        actor=None, biller=biller, endpoint_id=endpoint.pk, active=False
    )
    pay(biller, invoice)
    assert not WebhookDelivery.objects.exists()


# --- sending and signatures ------------------------------------------------------------------------------


def test_a_payment_is_posted_after_commit_signed_with_the_secret(  # type: ignore[no-untyped-def]
    biller: Biller, invoice: Invoice, receiver: Receiver, django_capture_on_commit_callbacks
) -> None:
    endpoint, secret = endpoint_for(biller, receiver.url, ["invoice.paid"])
    send(h.payment(biller, invoice))
    with django_capture_on_commit_callbacks(execute=True):
        notices_apply()
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    delivery = WebhookDelivery.objects.get()
    assert request.path == "/hooks/payeasy"
    assert request.headers["Payeasy-Event-Id"] == str(delivery.event_id)
    assert request.headers["Payeasy-Event-Type"] == "invoice.paid"
    assert request.headers["Content-Type"] == "application/json; charset=utf-8"
    assert request.body == delivery.payload.encode()
    assert verify_signature(secret, request.headers["Payeasy-Signature"], request.body)
    assert not verify_signature("whsec_wrong", request.headers["Payeasy-Signature"], request.body)
    assert not verify_signature(secret, request.headers["Payeasy-Signature"], request.body + b" ")
    body = json.loads(request.body)
    assert body["type"] == "invoice.paid" and body["data"]["invoice"] == invoice.number
    assert (delivery.status, delivery.attempts, delivery.endpoint_id) == ("succeeded", 1, endpoint.pk)
    assert delivery.delivered_at is not None and delivery.next_attempt_at is None


def test_signature_fails_when_tampered_or_too_old() -> None:
    body = b'{"id":"x"}'
    now = int(time.time())
    header = sign(["whsec_current"], body, now)
    assert verify_signature("whsec_current", header, body)
    assert not verify_signature("whsec_current", header, b'{"id":"y"}')
    assert not verify_signature("whsec_current", header, body, now=now + 301)
    assert verify_signature("whsec_current", header, body, tolerance=600, now=now + 301)
    assert not verify_signature("whsec_current", header.replace(f"t={now}", f"t={now + 1}"), body)
    assert not verify_signature("whsec_current", "v1=abc", body)
    assert not verify_signature("whsec_current", "", body)


def test_during_rotation_both_secrets_sign_then_only_the_new_one(biller: Biller, receiver: Receiver) -> None:
    endpoint, old = endpoint_for(biller, receiver.url)
    endpoint, new = webhook_endpoints.webhook_secret_rotate(
        actor=None, biller=biller, endpoint_id=endpoint.pk
    )
    assert new != old and webhook_endpoints.signing_secrets(endpoint, timezone.now()) == [new, old]
    webhooks.events_record([Event("payment.received", biller.pk, None, {"amount": 1})])
    webhooks.deliver_due()
    header = receiver.requests[0].headers["Payeasy-Signature"]
    assert header.count("v1=") == 2
    assert verify_signature(old, header, receiver.requests[0].body)
    assert verify_signature(new, header, receiver.requests[0].body)
    # 24 hours later the old secret no longer signs
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        previous_secret_expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    webhooks.events_record([Event("payment.received", biller.pk, None, {"amount": 2})])
    webhooks.deliver_due()
    header = receiver.requests[1].headers["Payeasy-Signature"]
    assert header.count("v1=") == 1
    assert verify_signature(new, header, receiver.requests[1].body)
    assert not verify_signature(old, header, receiver.requests[1].body)


# --- retries ---------------------------------------------------------------------------------------------


def test_a_failure_is_retried_with_backoff_and_logged_then_succeeds(
    biller: Biller, receiver: Receiver
) -> None:
    endpoint_for(biller, receiver.url)
    webhooks.events_record([Event("payment.received", biller.pk, None, {"amount": 1})])
    receiver.answers = [500]
    before = timezone.now()
    result = webhooks.deliver_due()
    assert (result.attempted, result.succeeded, result.gave_up) == (1, 0, 0)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_response_status) == ("pending", 1, 500)
    assert delivery.next_attempt_at is not None
    wait = (delivery.next_attempt_at - before).total_seconds()
    assert 27 <= wait <= 34  # 30 s ± 10 %
    assert webhooks.deliver_due().attempted == 0  # not due yet
    due_now(delivery)
    assert webhooks.deliver_due().succeeded == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_response_status) == ("succeeded", 2, 200)
    first, second = WebhookAttempt.objects.filter(delivery=delivery).order_by("id")
    assert (first.response_status, first.succeeded, first.response_body) == (500, False, "")
    assert (second.response_status, second.succeeded, second.response_body) == (
        200,
        True,
        '{"received":true}',
    )
    assert second.response_headers["x-request-id"] == "test" and "x-receiver" not in second.response_headers
    assert first.request_headers["Payeasy-Event-Id"] == second.request_headers["Payeasy-Event-Id"]
    assert [r.headers["Payeasy-Event-Id"] for r in receiver.requests] == [str(delivery.event_id)] * 2


def test_an_unreachable_endpoint_is_logged_as_an_error(biller: Biller) -> None:
    closed = Receiver()
    url = closed.url
    closed.close()  # nothing listens there any more
    endpoint_for(biller, url)
    webhooks.events_record([Event("payment.received", biller.pk, None, {"amount": 1})])
    webhooks.deliver_due()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending" and delivery.last_response_status is None
    assert "ConnectError" in delivery.last_error
    assert WebhookAttempt.objects.get().error == delivery.last_error


def test_backoff_doubles_from_30_seconds_and_is_capped() -> None:
    for attempt, seconds in [(1, 30), (2, 60), (3, 120), (9, 7680), (10, 14400), (40, 14400)]:
        assert seconds * 0.9 <= webhooks.backoff(attempt).total_seconds() <= seconds * 1.1


def test_gives_up_after_three_days(biller: Biller, receiver: Receiver) -> None:
    endpoint_for(biller, receiver.url)
    webhooks.events_record([Event("payment.received", biller.pk, None, {"amount": 1})])
    delivery = WebhookDelivery.objects.get()
    assert delivery.give_up_at - delivery.created_at == datetime.timedelta(days=3)
    # the last retry is at the three-day mark, not after it
    soon = timezone.now() + datetime.timedelta(seconds=20)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(attempts=12, give_up_at=soon)
    receiver.answers = [503, 503]
    webhooks.deliver_due()
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.next_attempt_at == soon
    # three days have passed: the next failure is the last
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        give_up_at=timezone.now() - datetime.timedelta(seconds=1), next_attempt_at=timezone.now()
    )
    assert webhooks.deliver_due().gave_up == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 14, None)
    assert webhooks.deliver_due().attempted == 0
    assert len(receiver.requests) == 2


def test_deliveries_of_a_deactivated_endpoint_fail_unsent(biller: Biller, receiver: Receiver) -> None:
    endpoint, _secret = endpoint_for(biller, receiver.url)
    webhooks.events_record([Event("payment.received", biller.pk, None, {"amount": 1})])
    webhook_endpoints.webhook_endpoint_set_active(
        actor=None, biller=biller, endpoint_id=endpoint.pk, active=False
    )
    assert webhooks.deliver_due().attempted == 0
    assert WebhookDelivery.objects.get().status == "failed" and receiver.requests == []


def test_beat_task_posts_what_is_due(biller: Biller, receiver: Receiver) -> None:
    from payeasy import tasks

    endpoint_for(biller, receiver.url)
    webhooks.events_record([Event("payment.received", biller.pk, None, {"n": n}) for n in range(3)])
    assert tasks.webhooks_retry_due.run() == 3
    assert tasks.webhooks_retry_due.run() == 0  # twice: sent once
    assert sorted(json.loads(r.body)["data"]["n"] for r in receiver.requests) == [0, 1, 2]


# --- URLs ------------------------------------------------------------------------------------------------


def test_url_rules(settings: Any) -> None:
    assert webhook_endpoints.url_problem("http://127.0.0.1:8080/hook") == ""  # development
    assert webhook_endpoints.url_problem("ftp://example.jp/hook")
    assert webhook_endpoints.url_problem("https://user:pw@example.jp/hook")
    settings.PAYEASY_WEBHOOK_REQUIRE_HTTPS = True
    settings.PAYEASY_WEBHOOK_ALLOW_PRIVATE = False
    assert webhook_endpoints.url_problem("https://erp.example.jp/payeasy") == ""
    assert webhook_endpoints.url_problem("https://8.8.8.8/hook") == ""
    assert "public" in webhook_endpoints.url_problem("https://10.0.0.5/hook")  # the internal network: never
    assert "https://" in webhook_endpoints.url_problem("http://erp.example.jp/payeasy")
    for local in (
        "https://localhost/x",
        "https://127.0.0.1/x",
        "https://[::1]/x",
        "https://169.254.169.254/x",
    ):
        assert webhook_endpoints.url_problem(local), local


def test_a_url_that_became_refused_is_not_posted(biller: Biller, receiver: Receiver, settings: Any) -> None:
    endpoint_for(biller, receiver.url)
    webhooks.events_record([Event("payment.received", biller.pk, None, {"amount": 1})])
    settings.PAYEASY_WEBHOOK_ALLOW_PRIVATE = False
    webhooks.deliver_due()
    assert receiver.requests == []
    assert WebhookDelivery.objects.get().last_error.startswith("refused")


# --- the console -----------------------------------------------------------------------------------------


def console(biller: Biller, path: str = "") -> str:
    return f"/b/{biller.slug}/console/webhooks/{path}"


def test_admin_adds_an_endpoint_and_sees_its_secret_once(admin_client: Client, biller: Biller) -> None:
    page = admin_client.get(console(biller))
    assert page.status_code == 200 and b"No endpoints yet" in page.content
    assert f'href="{console(biller)}"'.encode() in admin_client.get(f"/b/{biller.slug}/console/").content
    response = admin_client.post(
        console(biller, "new/"),
        {"url": "https://erp.example.jp/payeasy", "description": "ERP", "event_types": ["invoice.paid"]},
    )
    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.get(biller=biller)
    secret = response.context["secret"]
    assert secret.startswith("whsec_") and secret.encode() in response.content
    assert webhook_endpoints.signing_secrets(endpoint, timezone.now()) == [secret]
    assert "no-cache" in response["Cache-Control"]
    assert (endpoint.url, endpoint.event_types, endpoint.active) == (
        "https://erp.example.jp/payeasy",
        ["invoice.paid"],
        True,
    )
    assert AuditEntry.objects.filter(biller=biller, action="webhook_endpoint.create").exists()
    assert secret.encode() not in admin_client.get(console(biller, f"{endpoint.pk}/")).content
    # edit: events and description
    response = admin_client.post(
        console(biller, f"{endpoint.pk}/"),
        {"url": endpoint.url, "description": "ERP 2", "event_types": ["invoice.paid", "payment.reversed"]},
    )
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.event_types == ["payment.reversed", "invoice.paid"] and endpoint.description == "ERP 2"


def test_the_form_names_what_is_wrong(admin_client: Client, biller: Biller, settings: Any) -> None:
    response = admin_client.post(console(biller, "new/"), {"url": "https://erp.example.jp/x"})
    assert response.status_code == 400 and response.context["form"].errors["event_types"]
    settings.PAYEASY_WEBHOOK_REQUIRE_HTTPS = True
    response = admin_client.post(
        console(biller, "new/"), {"url": "http://erp.example.jp/x", "event_types": ["invoice.paid"]}
    )
    assert response.status_code == 400 and response.context["form"].errors["url"]
    assert not WebhookEndpoint.objects.exists()


def test_admin_rotates_the_secret(admin_client: Client, biller: Biller) -> None:
    endpoint, old = endpoint_for(biller, "https://erp.example.jp/x")
    response = admin_client.post(console(biller, f"{endpoint.pk}/rotate/"))
    assert response.status_code == 200
    endpoint.refresh_from_db()
    new = response.context["secret"]
    assert webhook_endpoints.signing_secrets(endpoint, timezone.now()) == [new, old] and new != old
    assert new.encode() in response.content and old.encode() not in response.content
    assert endpoint.previous_secret_expires_at is not None
    left = endpoint.previous_secret_expires_at - timezone.now()
    assert datetime.timedelta(hours=23) < left <= datetime.timedelta(hours=24)


def test_admin_deactivates_and_sends_a_test_event(  # type: ignore[no-untyped-def]
    admin_client: Client, biller: Biller, receiver: Receiver, django_capture_on_commit_callbacks
) -> None:
    endpoint, secret = endpoint_for(biller, receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(console(biller, f"{endpoint.pk}/test/"))
    delivery = WebhookDelivery.objects.get()
    assert response.status_code == 302 and response["Location"] == console(
        biller, f"deliveries/{delivery.pk}/"
    )
    assert delivery.event_type == "webhook.test" and delivery.status == "succeeded"
    assert verify_signature(
        secret, receiver.requests[0].headers["Payeasy-Signature"], receiver.requests[0].body
    )
    admin_client.post(console(biller, f"{endpoint.pk}/active/"), {"active": "0"})
    endpoint.refresh_from_db()
    assert not endpoint.active
    assert AuditEntry.objects.filter(biller=biller, action="webhook_endpoint.deactivate").exists()
    response = admin_client.post(console(biller, f"{endpoint.pk}/test/"), follow=True)
    assert b"inactive" in response.content and WebhookDelivery.objects.count() == 1


def test_delivery_log_shows_request_and_response_and_filters(
    admin_client: Client, biller: Biller, receiver: Receiver
) -> None:
    endpoint_for(biller, receiver.url)
    webhooks.events_record(
        [
            Event("payment.received", biller.pk, None, {"amount": 1}),
            Event("payment.reversed", biller.pk, None, {"amount": -1}),
        ]
    )
    receiver.answers = [200, 500]
    webhooks.deliver_due(limit=1)  # oldest first: payment.received answered 200
    webhooks.deliver_due(limit=1)  # payment.reversed answered 500
    ok = WebhookDelivery.objects.get(status="succeeded")
    waiting = WebhookDelivery.objects.get(status="pending")
    page = admin_client.get(console(biller, "deliveries/"))
    assert page.status_code == 200 and str(ok.event_id).encode() in page.content
    assert str(waiting.event_id).encode() in page.content
    page = admin_client.get(console(biller, "deliveries/"), {"status": "succeeded"})
    assert list(page.context["deliveries"]) == [ok]
    page = admin_client.get(console(biller, "deliveries/"), {"event_type": waiting.event_type})
    assert list(page.context["deliveries"]) == [waiting]
    assert admin_client.get(console(biller, "deliveries/"), {"status": "nonsense"}).status_code == 400
    detail = admin_client.get(console(biller, f"deliveries/{waiting.pk}/"))
    assert detail.status_code == 200
    text = detail.content.decode()
    assert "Payeasy-Signature" in text and str(waiting.event_id) in text  # the request headers
    assert "HTTP 500" in text and "test" in text  # the response: status and a few headers
    assert "temporarily unavailable" not in text  # never the body of a failed answer
    assert "&quot;amount&quot;: -1" in text  # the body sent


def test_resend_from_the_console_keeps_the_event_id(  # type: ignore[no-untyped-def]
    admin_client: Client, biller: Biller, receiver: Receiver, django_capture_on_commit_callbacks
) -> None:
    _endpoint, secret = endpoint_for(biller, receiver.url)
    webhooks.events_record([Event("invoice.paid", biller.pk, None, {"amount": 1})])
    webhooks.deliver_due()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "succeeded"
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(console(biller, f"deliveries/{delivery.pk}/resend/"))
    assert response.status_code == 302
    assert len(receiver.requests) == 2
    first, again = receiver.requests
    assert again.headers["Payeasy-Event-Id"] == first.headers["Payeasy-Event-Id"] == str(delivery.event_id)
    assert again.body == first.body
    assert verify_signature(secret, again.headers["Payeasy-Signature"], again.body)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 2)
    assert WebhookAttempt.objects.filter(delivery=delivery).count() == 2
    assert AuditEntry.objects.filter(biller=biller, action="webhook_delivery.resend").exists()


def test_resend_after_giving_up_makes_one_more_attempt(biller: Biller, receiver: Receiver) -> None:
    endpoint_for(biller, receiver.url)
    webhooks.events_record([Event("invoice.paid", biller.pk, None, {"amount": 1})])
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status="failed", next_attempt_at=None, give_up_at=timezone.now() - datetime.timedelta(days=1)
    )
    webhooks.webhook_delivery_resend(actor=None, biller=biller, delivery_id=delivery.pk)
    receiver.answers = [502]
    assert webhooks.deliver_due().gave_up == 1
    delivery.refresh_from_db()
    assert delivery.status == "failed" and len(receiver.requests) == 1


def test_operators_cannot_see_or_resend_deliveries(
    client: Client, biller: Biller, receiver: Receiver
) -> None:
    endpoint, _secret = endpoint_for(biller, receiver.url)
    webhooks.events_record([Event("invoice.paid", biller.pk, None, {"amount": 1})])
    delivery = WebhookDelivery.objects.get()
    client.force_login(factories.make_member(biller, role=Membership.Role.OPERATOR))
    for path in ("", "new/", f"{endpoint.pk}/", "deliveries/", f"deliveries/{delivery.pk}/"):
        assert client.get(console(biller, path)).status_code == 403, path
    assert client.post(console(biller, f"deliveries/{delivery.pk}/resend/")).status_code == 403
    assert client.post(console(biller, f"{endpoint.pk}/rotate/")).status_code == 403
    assert b"Webhooks" not in client.get(f"/b/{biller.slug}/console/").content  # no link either
    delivery.refresh_from_db()
    assert delivery.attempts == 0 and receiver.requests == []


def test_another_tenants_endpoints_and_deliveries_answer_404(
    admin_client: Client, biller: Biller, receiver: Receiver
) -> None:
    other = factories.make_biller()
    theirs, secret = endpoint_for(other, receiver.url)
    webhooks.events_record([Event("invoice.paid", other.pk, None, {"amount": 1})])
    delivery = WebhookDelivery.objects.get()
    assert_cross_tenant_hidden(admin_client, lambda pk: console(biller, f"deliveries/{pk}/"), delivery.pk)
    assert_cross_tenant_hidden(
        admin_client, lambda pk: console(biller, f"deliveries/{pk}/resend/"), delivery.pk, method="post"
    )
    assert_cross_tenant_hidden(admin_client, lambda pk: console(biller, f"{pk}/"), theirs.pk)
    assert_cross_tenant_hidden(
        admin_client, lambda pk: console(biller, f"{pk}/rotate/"), theirs.pk, method="post"
    )
    assert_cross_tenant_hidden(
        admin_client, lambda pk: console(biller, f"{pk}/test/"), theirs.pk, method="post"
    )
    page = admin_client.get(console(biller, "deliveries/"))
    assert list(page.context["deliveries"]) == []
    assert admin_client.get(console(biller, "deliveries/"), {"endpoint": theirs.pk}).status_code == 400
    assert admin_client.get(console(biller)).context["endpoints"].count() == 0
    theirs.refresh_from_db()
    assert webhook_endpoints.signing_secrets(theirs, timezone.now()) == [secret] and receiver.requests == []
    delivery.refresh_from_db()
    assert delivery.attempts == 0 and delivery.status == "pending"


def test_the_pages_speak_japanese(admin_client: Client, biller: Biller, receiver: Receiver) -> None:
    endpoint, _secret = endpoint_for(biller, receiver.url)
    webhooks.events_record([Event("invoice.paid", biller.pk, None, {"amount": 1})])
    webhooks.deliver_due()
    delivery = WebhookDelivery.objects.get()
    for path, text in [
        ("", "エンドポイントを追加"),
        (f"{endpoint.pk}/", "署名シークレット"),
        ("deliveries/", "Webhook配信ログ"),
        (f"deliveries/{delivery.pk}/", "今すぐ再送"),
    ]:
        page = admin_client.get(console(biller, path), HTTP_ACCEPT_LANGUAGE="ja")
        assert page.status_code == 200 and text in page.content.decode(), path
