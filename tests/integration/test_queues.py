"""A bulk e-mail never delays a payment: 60,000 publication e-mails pending, a payment applied in < 1 s.

Real processes in the per-queue layout of docs/operators.md: a redis-server of the test's own, the
payments worker (``-Q payments``) and the background worker (``-Q notifications,webhooks,imports,
maintenance``), both prefork with two processes as config/Procfile runs them. The 60,000 tasks are
published by celery itself (``apply_async``, pipelined by kombu's ``Producer.batch()``), exactly what
``import_notify`` sends for a 60,000-invoice CSV. The payment is committed by the line code the
commserver runs, and the workers are woken as the commserver wakes them (``notices_apply.delay()``).

With the old routing (e-mail on ``celery``, the payments queue) the wake-up would be the 60,001st
message of one FIFO list, behind minutes of e-mail: the assertion that the queue of the e-mails still
holds most of them when the payment is applied is what proves the payment overtook them.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from payeasy.models import LedgerEntry
from tests.integration.conftest import BACKGROUND_QUEUES, PAYMENTS_QUEUES, RedisServer
from tests.payeasy import line_helpers as h

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

EMAILS = 60_000


def queue_of(task_name: str) -> str:
    from config.celery import app

    return app.amqp.router.route({}, task_name)["queue"].name


def test_a_payment_is_applied_within_a_second_with_60000_emails_pending(  # type: ignore[no-untyped-def]
    postgres, redis_server: RedisServer, redis_server_broker, worker_factory, tmp_path: Path
) -> None:
    from billing.tasks import invoice_published_notify
    from config.celery import app
    from payeasy import tasks

    mail_queue = queue_of("billing.tasks.invoice_published_notify")
    payments_queue = queue_of("payeasy.tasks.notices_apply")
    assert mail_queue != payments_queue
    assert payments_queue in PAYMENTS_QUEUES and mail_queue not in PAYMENTS_QUEUES
    assert mail_queue in BACKGROUND_QUEUES

    env = {**redis_server_broker, "DJANGO_EMAIL_BACKEND": "locmem"}
    worker_factory(name="payments", queues=PAYMENTS_QUEUES, pool="prefork", concurrency=2, **env)
    biller = h.line_biller()
    published = h.published_invoice(biller, price=2000)
    unpaid = h.published_invoice(biller, price=3000)
    h.send(h.open_day(biller))

    started = time.monotonic()
    with app.producer_or_acquire() as producer, producer.batch():
        for _ in range(EMAILS):
            invoice_published_notify.apply_async(args=[[published.pk]], producer=producer)
    published_in = time.monotonic() - started
    redis = redis_server.client()
    assert redis.llen(mail_queue) >= EMAILS  # (and the two invoices' own publication e-mails)
    # the background worker starts on the 60,000 at once (its own nice level left alone: worst case)
    background = worker_factory(
        name="background", queues=BACKGROUND_QUEUES, pool="prefork", concurrency=2, **env
    )
    time.sleep(1)

    h.send(h.payment(biller, unpaid))  # committed and acknowledged, as the commserver does
    woken = time.monotonic()
    tasks.notices_apply.delay()  # the commserver's wake-up
    while not LedgerEntry.objects.filter(invoice=unpaid).exists():
        assert time.monotonic() - woken < 1.0, (
            f"the payment was not applied within 1 s of the wake-up with {redis.llen(mail_queue)} e-mails "
            f"pending on {mail_queue!r}\n{background.output()[-3000:]}"
        )
        time.sleep(0.005)
    latency = time.monotonic() - woken
    pending = redis.llen(mail_queue)
    assert pending > EMAILS * 0.75, f"only {pending} e-mails still pending: the test proved nothing"
    print(
        f"\n{EMAILS} publication e-mails published in {published_in:.1f} s on {mail_queue!r}; a payment "
        f"woken on {payments_queue!r} applied {latency * 1000:.0f} ms after the wake-up, with {pending} "
        f"e-mails still pending"
    )
