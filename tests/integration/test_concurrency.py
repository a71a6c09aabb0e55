"""Concurrent requests on the real database: one effect per idempotency key, never a number twice."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.test import Client

from billing import services
from billing.models import Invoice
from tests.factories import make_biller, make_customer, make_invoice

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

THREADS = 8


def _in_thread(fn):  # type: ignore[no-untyped-def]
    def run(*args):  # type: ignore[no-untyped-def]
        try:
            return fn(*args)
        finally:
            connection.close()

    return run


def test_concurrent_posts_with_one_idempotency_key_have_one_effect(postgres: None) -> None:
    biller = make_biller()
    make_customer(biller, code="D-1")
    _, token = services.api_key_create(actor=None, biller=biller, name="k")
    body = json.dumps(
        {
            "customer": "D-1",
            "number": "C-1",
            "issue_date": "2026-11-01",
            "due_date": "2026-11-30",
            "description": "料金",
            "publish": True,
            "lines": [{"description": "x", "quantity": 1, "unit_price": 5000, "tax_category": "10"}],
        }
    )
    barrier = threading.Barrier(THREADS)

    @_in_thread
    def post(_: int):  # type: ignore[no-untyped-def]
        client = Client()
        barrier.wait()
        return client.post(
            f"/b/{biller.slug}/api/v1/invoices/",
            body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
            HTTP_IDEMPOTENCY_KEY="same-key",
        )

    with ThreadPoolExecutor(THREADS) as pool:
        responses = list(pool.map(post, range(THREADS)))
    assert [r.status_code for r in responses] == [201] * THREADS
    assert len({r.content for r in responses}) == 1  # every caller sees the one invoice
    assert Invoice.objects.filter(biller=biller).count() == 1


def test_concurrent_publications_never_share_a_number(postgres: None) -> None:
    biller = make_biller()
    customer = make_customer(biller)
    drafts = [
        make_invoice(biller=biller, customer=customer, number=f"P-{i}", amount=100, published=False)
        for i in range(THREADS * 5)
    ]
    barrier = threading.Barrier(THREADS)

    @_in_thread
    def publish(chunk: list[int]) -> None:
        barrier.wait()
        for pk in chunk:
            services.invoice_publish_many(actor=None, biller=biller, invoice_ids=[pk])

    chunks = [[d.pk for d in drafts[i::THREADS]] for i in range(THREADS)]
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(publish, chunks))
    numbers = [inv.customer_number for inv in Invoice.objects.filter(biller=biller).select_related("biller")]
    assert len(numbers) == len(set(numbers)) == THREADS * 5


def test_one_teller_file_imported_at_once_by_many_is_stored_once(postgres: None) -> None:
    from payeasy import codec
    from payeasy.models import Notice, TellerFile
    from payeasy.services.teller import teller_file_import
    from tests.payeasy import line_helpers as h

    biller = h.line_biller()
    invoices = [h.published_invoice(biller) for _ in range(3)]
    records = [
        codec.BatchData(
            i.customer_number, i.confirmation_number, i.total, "101", "20261126", "100000", f"{n:08d}"
        )
        for n, i in enumerate(invoices, start=1)
    ]
    header = codec.BatchHeader(biller.biller_code, "ﾃｽﾄ", "20261126", "0001", "ﾃｽﾄ")
    batch = codec.make_batch_file(header, records)
    data = codec.build_batch_file(batch)
    barrier = threading.Barrier(THREADS)

    @_in_thread
    def offer(_: int):  # type: ignore[no-untyped-def]
        barrier.wait()
        return teller_file_import(batch.name, data)

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(offer, range(THREADS)))
    assert all(r.accepted for r in results)
    assert sum(r.stored for r in results) == 1  # the others saw it imported: unchanged
    assert TellerFile.objects.count() == 1 and Notice.objects.count() == 3
