"""Schemathesis against the tenant API, as each of two tenants with data of their own in PostgreSQL.

The schema is the one the product serves (drf-spectacular, /b/<slug>/api/v1/schema/); requests go
through the Django WSGI application with an API key, so every layer a client meets runs (tenancy
middleware, authentication, DRF, services, PostgreSQL). For every operation, valid and invalid
requests are generated. Every response must be in the schema (status code, content type, body),
none may be a 5xx, and no response to one tenant may name the other tenant's ids, invoice numbers,
external ids, customer codes, お客様番号 or 確認番号. Bounded: SCHEMATHESIS_EXAMPLES per operation
and mode (default 25), under two minutes on two cores.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from billing import services
from billing.models import Biller, Customer, Invoice
from tests.factories import make_biller, make_customer, make_invoice

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", 25))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@dataclass
class Tenant:
    biller: Biller
    token: str
    invoice_ids: set[int] = field(default_factory=set)
    customer_ids: set[int] = field(default_factory=set)
    strings: set[str] = field(default_factory=set)  # numbers, codes, ids that are its own


def seed(prefix: str) -> Tenant:
    """Customers, invoices in every state, a payment request and a balance, all named with ``prefix``."""
    biller = make_biller(slug=f"{prefix.lower()}-tenant")
    _, token = services.api_key_create(actor=None, biller=biller, name=f"{prefix} key")
    tenant = Tenant(biller, token)
    customers = [
        make_customer(
            biller, code=f"{prefix}-C{i}", name=f"{prefix}顧客{i}", email=f"{prefix.lower()}{i}@example.jp"
        )
        for i in range(3)
    ]
    issue = timezone.localdate() - datetime.timedelta(days=10)
    for i in range(6):
        invoice = make_invoice(
            biller=biller,
            customer=customers[i % 3],
            number=f"{prefix}-INV-{i}",
            external_id=f"{prefix.lower()}-ext-{i}",
            issue_date=issue,
            due_date=issue + datetime.timedelta(days=20 + i),
            lines=[
                {"description": "基本料金", "quantity": 1 + i, "unit_price": 1200, "tax_category": "10"},
                {"description": "食料品", "quantity": 2, "unit_price": 300, "tax_category": "8"},
            ],
            tax_inclusive=i % 2 == 1,
            published=i % 3 != 0,
        )
        if i == 4:
            services.invoice_cancel(actor=None, biller=biller, invoice=invoice, reason="誤請求")
    make_invoice(
        biller=biller,
        kind=Invoice.Kind.PAYMENT_REQUEST,
        customer=customers[0],
        amount=12800,
        description="通販ご注文",
        due_date=issue + datetime.timedelta(days=30),
        email=f"{prefix.lower()}-buyer@example.jp",
        name="佐藤 花子",
        external_id=f"{prefix.lower()}-order-1",
    )
    services.balance_account_set(
        actor=None,
        biller=biller,
        customer=customers[1],
        minimum_payment=5000,
        items=[{"date": issue, "description": f"{prefix} 10月ご利用分", "amount": 30000}],
    )
    for inv in Invoice.objects.filter(biller=biller).select_related("biller"):
        tenant.invoice_ids.add(inv.pk)
        tenant.strings |= {inv.number, inv.external_id}
        if inv.customer_number:
            tenant.strings.add(inv.customer_number)
        if inv.confirmation_number:
            tenant.strings.add(inv.confirmation_number)
    for c in Customer.objects.filter(biller=biller):
        tenant.customer_ids.add(c.pk)
        tenant.strings |= {c.code, c.email, c.name}
    tenant.strings.discard("")
    return tenant


def walk(value: Any, parent_key: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(key, value, the dict holding it) for every member of a JSON document."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key, item, value
            yield from walk(item, key)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item, parent_key)


def leaks(body: bytes, other: Tenant) -> list[str]:
    """What of ``other``'s appears in a response body."""
    found = [s for s in other.strings if s in body.decode("utf-8", "replace")]
    try:
        document = json.loads(body)
    except ValueError:
        return found
    for key, value, holder in walk(document):
        if key == "id" and isinstance(value, int):
            if "code" in holder and value in other.customer_ids:
                found.append(f"customer id {value}")
            elif "number" in holder and value in other.invoice_ids:
                found.append(f"invoice id {value}")
        elif key == "invoice" and isinstance(value, int) and value in other.invoice_ids:
            found.append(f"invoice id {value}")
    return found


@pytest.fixture
def tenants(postgres: None) -> Iterator[tuple[Tenant, Tenant]]:
    # the WSGI application runs in this thread on the test's connection (its data, in its transaction):
    # as under Django's test client, a finished request must not close that connection
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield seed("ALFA"), seed("BETA")
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def fuzz(tenant: Tenant, other: Tenant) -> list[str]:
    """Run every operation of the schema as ``tenant``; the problems found, one line each."""
    app = get_wsgi_application()
    base = f"/b/{tenant.biller.slug}/api/v1"
    schema = schemathesis.openapi.from_wsgi(f"{base}/schema/", app)
    # the API key goes in every request (below); generating requests without it is tested elsewhere
    schema.config.generation.update(with_security_parameters=False)
    headers = {"Authorization": f"Bearer {tenant.token}"}
    problems: list[str] = []
    statuses: dict[int, int] = {}

    def check(case: Any, mode: GenerationMode) -> None:
        extra = [negative_data_rejection] if mode == GenerationMode.NEGATIVE else []
        try:
            response = case.call_and_validate(
                base_url=f"http://localhost{base}".removesuffix("/api/v1"),
                headers=headers,
                checks=CHECKS + extra,
            )
        except (AssertionError, BaseExceptionGroup) as exc:  # a Failure, or schemathesis' FailureGroup
            failures = exc.exceptions if isinstance(exc, BaseExceptionGroup) else [exc]
            for failure in failures:
                title = getattr(failure, "title", type(failure).__name__)
                message = " ".join(str(getattr(failure, "message", failure)).split())[:300]
                where = f"{case.formatted_path}?{case.query}"
                problems.append(f"{case.operation.label} ({mode.value}) {title}: {message} [{where}]")
            return
        statuses[response.status_code // 100] = statuses.get(response.status_code // 100, 0) + 1
        leaked = leaks(response.content, other)
        if leaked:
            problems.append(f"{case.operation.label}: {case.formatted_path} names the other's {leaked}")

    def generated(operation: Any, mode: GenerationMode) -> None:
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            check(case, mode)

        try:
            run()
        except Unsatisfiable:
            # no invalid request exists for it (every parameter a free string): nothing to generate
            assert mode == GenerationMode.NEGATIVE, operation.label

    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14, [op.label for op in operations]
    for operation in operations:
        generated(operation, GenerationMode.POSITIVE)
        generated(operation, GenerationMode.NEGATIVE)
        # the other tenant's ids and codes, where this one's would go: each must answer like a missing one
        path_names = {p.name for p in operation.path_parameters}
        if "id" in path_names:
            for pk in sorted(other.invoice_ids | other.customer_ids):
                case = operation.Case(path_parameters={"id": pk})
                check(case, GenerationMode.POSITIVE)
        if "code" in path_names:
            for code in sorted(s for s in other.strings if s.startswith("BETA-C") or s.startswith("ALFA-C")):
                check(operation.Case(path_parameters={"code": code}), GenerationMode.POSITIVE)
        if operation.method.upper() == "GET" and not path_names:
            for text in sorted(other.strings):
                check(operation.Case(query={"q": text}), GenerationMode.POSITIVE)
    # not a vacuous run: many requests, answered both with data and with errors
    assert statuses.get(2, 0) >= 100 and statuses.get(4, 0) >= 100, statuses
    return problems


def test_the_api_as_each_of_two_tenants_keeps_its_schema_and_its_tenant(
    tenants: tuple[Tenant, Tenant],
) -> None:
    alfa, beta = tenants
    problems = fuzz(alfa, beta) + fuzz(beta, alfa)
    assert not problems, "\n".join(sorted(set(problems)))
