"""Kept pages given again before the middlewares (billing.page_replay) and the fingerprints they are
checked by (billing.page_cache), on PostgreSQL and Redis as production runs them.

A kept page is replayed only to the same request of the same session while every row it shows is
unchanged: each change below — a logout, a new password, a deactivated user, a removed account or
membership, a suspended biller, an edited invoice, a message waiting, another language, another day —
makes the next request go through the whole stack, which answers what it answers (a login page, a 404,
the new content). The replayed answer is the rendered one but for its CSRF tokens, which are valid.
The fingerprint statement reads every table the page's rendering reads (a page that starts reading a
new table fails here until its fingerprint covers it), puts the caller's tenant setting back, and the
console list's fingerprint covers exactly the rows of its first page.
"""

from __future__ import annotations

import datetime
import re
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.contrib.messages import constants
from django.contrib.messages.storage.base import Message
from django.contrib.messages.storage.cookie import CookieStorage
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest
from django.middleware.csrf import CSRF_ALLOWED_CHARS, _get_new_csrf_string, _unmask_cipher_token
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing import page_cache, page_replay, tasks
from billing.models import Biller, CustomerAccount, Invoice, KeptAnswer, Membership
from billing.selectors import INVOICE_PAGE_SIZE, INVOICE_SORTS, InvoiceFilters
from billing.tenancy import cross_tenant, tenant_scope
from tests.conftest import need, owner_credentials
from tests.factories import make_customer, make_invoice, make_member, make_portal_account

# every change is its own transaction, as in production: a row changed in the transaction that read it
# keeps its xmin (the tests' usual rolled-back transaction would hide every change from the fingerprints)
pytestmark = pytest.mark.django_db(transaction=True)

HEADER = "X-Page-Cache"
TOKEN = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]*)"')
# headers made for each answer
PER_ANSWER = {"x-page-cache", "x-request-id", "expires", "set-cookie"}


@pytest.fixture(autouse=True)
def _services() -> None:
    need(connection.vendor == "postgresql", "kept pages need PostgreSQL (xmin): set DATABASE_URL")
    need(bool(settings.REDIS_URL), "kept pages need the Redis cache: set REDIS_URL")


@pytest.fixture
def portal(biller: Biller) -> tuple[Client, CustomerAccount, Invoice]:
    account = make_portal_account(biller)
    make_invoice(biller=biller, customer=account.customer, number="REPLAY-OLD")
    invoice = make_invoice(biller=biller, customer=account.customer, number="REPLAY-1")
    client = Client(enforce_csrf_checks=True)
    client.force_login(account.user)
    return client, account, invoice


def bill_url(invoice: Invoice) -> str:
    return f"/b/{invoice.biller.slug}/my/invoices/{invoice.pk}/"


def list_url(biller: Biller) -> str:
    return f"/b/{biller.slug}/my/invoices/"


def console_url(biller: Biller) -> str:
    return f"/b/{biller.slug}/console/invoices/"


def kept(client: Client, url: str, **extra: Any) -> Any:
    """The page loaded twice: rendered and kept, then replayed."""
    first = client.get(url, **extra)
    assert first.status_code == 200, first.content[:2000]
    assert first[HEADER] in {"miss", "hit"}, dict(first.headers)
    again = client.get(url, **extra)
    assert again[HEADER] == "replay", dict(again.headers)
    return first, again


def without_tokens(content: bytes) -> bytes:
    return TOKEN.sub(b'name="csrfmiddlewaretoken" value=""', content)


@pytest.mark.parametrize("page", ["bill", "list"])
def test_a_replayed_page_is_the_rendered_one_with_fresh_tokens(portal: Any, page: str) -> None:
    client, _account, invoice = portal
    url = bill_url(invoice) if page == "bill" else list_url(invoice.biller)
    first, again = kept(client, url)
    assert without_tokens(again.content) == without_tokens(first.content)
    assert b"REPLAY-1" in again.content
    same = {k.lower(): v for k, v in first.items() if k.lower() not in PER_ANSWER}
    assert {k.lower(): v for k, v in again.items() if k.lower() not in PER_ANSWER} == same
    assert again.cookies[settings.CSRF_COOKIE_NAME].value == client.cookies[settings.CSRF_COOKIE_NAME].value
    tokens = set(TOKEN.findall(again.content))
    assert tokens and tokens.isdisjoint(TOKEN.findall(first.content))  # masked anew for this answer
    # the replayed token is one the CSRF check takes: the logout form posts with it
    logout = client.post(
        f"/b/{invoice.biller.slug}/my/logout/", {"csrfmiddlewaretoken": tokens.pop().decode()}
    )
    assert logout.status_code == 302, logout.content[:500]
    assert client.get(url).status_code == 302  # logged out: the kept page is not given again


def _logged_out(client: Client, account: CustomerAccount, invoice: Invoice) -> None:
    Session.objects.filter(session_key=client.cookies[settings.SESSION_COOKIE_NAME].value).delete()


def _new_password(client: Client, account: CustomerAccount, invoice: Invoice) -> None:
    account.user.set_password("another horse battery staple")
    account.user.save()


def _deactivated(client: Client, account: CustomerAccount, invoice: Invoice) -> None:
    account.user.is_active = False
    account.user.save()


def _account_removed(client: Client, account: CustomerAccount, invoice: Invoice) -> None:
    account.delete()


def _suspended(client: Client, account: CustomerAccount, invoice: Invoice) -> None:
    biller = Biller.objects.get(pk=invoice.biller_id)
    biller.status = Biller.Status.SUSPENDED
    biller.save()


def _invoice_edited(client: Client, account: CustomerAccount, invoice: Invoice) -> None:
    Invoice.objects.filter(pk=invoice.pk).update(description="請求内容を訂正しました")


def _message_waiting(client: Client, account: CustomerAccount, invoice: Invoice) -> None:
    # as a form's answer leaves it: Django's messages, in their cookie
    storage = CookieStorage(HttpRequest())
    client.cookies["messages"] = storage._encode([Message(constants.SUCCESS, "お知らせが届きました")])


def kept_keys() -> list[str]:
    """The cache keys (without the cache's prefix) of the kept pages in Redis."""
    raw = cache._cache.get_client()  # type: ignore[attr-defined]
    return [
        name.decode().split(":", 2)[2]
        for name in raw.scan_iter(match=f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:*:page:*")
    ]


def kept_answers() -> Any:
    return KeptAnswer.objects.cross_tenant("tests")


def forget_kept_pages() -> None:
    for key in kept_keys():
        cache.delete(key)
    with cross_tenant("tests"):
        kept_answers().delete()


def _next_day(client: Client, account: CustomerAccount, invoice: Invoice) -> None:
    with cross_tenant("tests"):
        assert kept_answers().update(day=datetime.date(2000, 1, 1)) == 1


CHANGES: dict[str, tuple[Callable[..., None], int, bytes]] = {
    # change → the status and a part of what the whole stack answers after it
    "logged out": (_logged_out, 302, b""),
    "new password": (_new_password, 302, b""),
    "deactivated": (_deactivated, 302, b""),
    "account removed": (_account_removed, 302, b""),
    "biller suspended": (_suspended, 404, b""),
    "invoice edited": (_invoice_edited, 200, "請求内容を訂正しました".encode()),
    "message waiting": (_message_waiting, 200, "お知らせが届きました".encode()),
    "another day": (_next_day, 200, b"REPLAY-1"),
}


@pytest.mark.parametrize("change", CHANGES, ids=list(CHANGES))
def test_a_change_of_what_the_page_read_goes_through_the_stack(portal: Any, change: str) -> None:
    client, account, invoice = portal
    make, status, shows = CHANGES[change]
    url = bill_url(invoice)
    kept(client, url)
    make(client, account, invoice)
    response = client.get(url)
    assert response.get(HEADER) != "replay", change
    assert response.status_code == status, (change, response.content[:1000])
    assert shows in response.content


def test_another_language_another_session_or_customer_is_not_given_the_kept_page(
    portal: Any, biller: Biller
) -> None:
    client, account, invoice = portal
    url = bill_url(invoice)
    kept(client, url)
    english = client.get(url, HTTP_ACCEPT_LANGUAGE="en")
    assert english.get(HEADER) != "replay" and b'lang="en"' in english.content
    again = Client()
    again.force_login(account.user)  # the same user, another session
    assert again.get(url).get(HEADER) != "replay"
    other = make_portal_account(biller)
    stranger = Client()
    stranger.force_login(other.user)
    refused = stranger.get(url)
    assert refused.status_code == 404 and b"REPLAY-1" not in refused.content
    assert stranger.get(url).status_code == 404


def test_a_page_is_replayed_per_request_but_not_per_referer(portal: Any) -> None:
    client, _account, invoice = portal
    url = list_url(invoice.biller)
    kept(client, url, HTTP_REFERER="https://mail.example.jp/1")
    assert client.get(url, HTTP_REFERER="https://mail.example.jp/2")[HEADER] == "replay"
    assert client.get(url + "?tab=paid").get(HEADER) != "replay"  # another page of the list
    assert client.get(url, HTTP_X_FORWARDED_HOST="evil.example").get(HEADER) != "replay"


@pytest.mark.parametrize(
    "change",
    [{"kept_until": datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)}, {"session_key": "x" * 32}],
    ids=["past its time", "of another session"],
)
def test_a_kept_answer_past_its_time_or_of_another_session_is_not_given(
    portal: Any, change: dict[str, Any]
) -> None:
    client, _account, invoice = portal
    url = bill_url(invoice)
    kept(client, url)
    with cross_tenant("tests"):
        assert kept_answers().update(**change) == 1
    response = client.get(url)
    assert response.status_code == 200 and response.get(HEADER) != "replay"
    assert b"REPLAY-1" in response.content
    assert client.get(url)[HEADER] == "replay"  # kept again, as the stack answered


def test_kept_answers_are_a_cache_under_the_tenant_policy_pruned_when_past_their_time(portal: Any) -> None:
    """UNLOGGED (no write-ahead log), compressed by PostgreSQL, invisible without a tenant or a bypass,
    deleted by beat's task once past their time and only then."""
    client, _account, invoice = portal
    kept(client, bill_url(invoice))
    kept(client, list_url(invoice.biller))
    with connection.cursor() as cursor:
        cursor.execute("SELECT relpersistence FROM pg_class WHERE relname = 'billing_keptanswer'")
        assert cursor.fetchone() == ("u",)
    with tenant_scope(None):
        assert not KeptAnswer.objects.for_biller(invoice.biller_id).exists()
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM billing_keptanswer")
            assert cursor.fetchone() == (0,)
    with tenant_scope(invoice.biller):
        assert KeptAnswer.objects.for_biller(invoice.biller_id).count() == 2
    # the page as rendered but its tokens, compressed by PostgreSQL (lz4 where the server has it: 0022)
    with cross_tenant("tests"), connection.cursor() as cursor:
        cursor.execute(
            "SELECT body, pg_column_compression(body), pg_column_size(body), octet_length(body),"
            " (SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression')"
            " FROM billing_keptanswer WHERE page = 'portal:invoice_detail'"
        )
        body, method, stored, length, lz4 = cursor.fetchone()
    assert b"REPLAY-1" in bytes(body) and page_cache.MARK in bytes(body)
    assert method == ("lz4" if lz4 else "pglz") and stored < length, (method, stored, length)
    with cross_tenant("tests"):
        kept_answers().filter(page="portal:invoice_list").update(
            kept_until=datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
        )
    assert tasks.kept_answers_prune() == 1
    with cross_tenant("tests"):
        assert list(kept_answers().values_list("page", flat=True)) == ["portal:invoice_detail"]
    assert client.get(bill_url(invoice))[HEADER] == "replay"


@pytest.fixture
def console(biller: Biller) -> tuple[Client, Any]:
    admin = make_member(biller, role=Membership.Role.ADMIN)
    client = Client()
    client.force_login(admin)
    for n in range(INVOICE_PAGE_SIZE + 3):
        make_invoice(biller=biller, number=f"CON-{n:03d}")
    return client, admin


def test_the_console_list_is_replayed_until_a_change(console: Any, biller: Biller) -> None:
    client, admin = console
    url = console_url(biller)
    first, again = kept(client, url)
    assert without_tokens(again.content) == without_tokens(first.content)
    newest = make_invoice(biller=biller, number="CON-NEWEST", issue_date=first_issue_date(biller))
    shown = client.get(url)
    assert shown.get(HEADER) != "replay" and b"CON-NEWEST" in shown.content
    assert client.get(url)[HEADER] == "replay"
    Membership.objects.filter(user=admin, biller=biller).delete()
    assert client.get(url).status_code == 404
    del newest


def first_issue_date(biller: Biller) -> Any:
    return (
        Invoice.objects.filter(biller=biller).order_by("-issue_date").values_list("issue_date", flat=True)[0]
    )


def test_the_console_fingerprint_covers_the_rows_of_the_first_page(console: Any, biller: Biller) -> None:
    client, admin = console
    # a spread of dates and a customer changed: the rows the page shows are the rows the fingerprint reads
    for n, invoice in enumerate(Invoice.objects.filter(biller=biller).order_by("id")[:20]):
        Invoice.objects.filter(pk=invoice.pk).update(issue_date=invoice.issue_date.replace(day=1 + n % 28))
    response = client.get(console_url(biller))
    shown = [int(i) for i in re.findall(rb'name="ids" value="(\d+)"', response.content)]
    assert len(shown) == INVOICE_PAGE_SIZE
    with tenant_scope(biller):
        fingerprint, _ = page_cache.fingerprint_of(
            "console:invoice_list", {"user": admin.pk, "biller": biller.pk}
        )
    rows = fingerprint.rsplit("/", 1)[1].split(",")
    ids = {int(row.split(".")[0]) for row in rows}
    expected = list(
        Invoice.objects.filter(biller=biller)
        .order_by(*INVOICE_SORTS[InvoiceFilters().sort])
        .values_list("id", flat=True)[: INVOICE_PAGE_SIZE + 1]
    )
    assert set(shown) <= ids and ids == set(expected)
    customer = make_customer(biller)
    Invoice.objects.filter(pk=shown[0]).update(customer=customer)
    with tenant_scope(biller):
        changed, _ = page_cache.fingerprint_of(
            "console:invoice_list", {"user": admin.pk, "biller": biller.pk}
        )
    assert changed != fingerprint


def test_the_functions_put_the_callers_tenant_back(portal: Any) -> None:
    client, account, invoice = portal
    params = {"user": account.user.pk, "biller": invoice.biller_id, "invoice": invoice.pk}
    kept(client, bill_url(invoice))
    with cross_tenant("tests"):
        key, session_key = kept_answers().values_list("key", "session_key").get()
    with tenant_scope(invoice.biller):
        for page in page_cache.PAGES:
            page_cache.fingerprint_of(page, params)
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT current_setting('app.biller_id', true), current_setting('app.bypass', true)"
                )
                assert cursor.fetchone() == (str(invoice.biller_id), ""), page
        with connection.cursor() as cursor:
            today = timezone.localdate()
            cursor.execute(
                page_replay.REPLAY_SQL.decode().replace("$1, $2, $3", "%s, %s, %s"), [key, session_key, today]
            )
            assert cursor.fetchone()[0] == "portal:invoice_detail"
            cursor.execute(
                "SELECT current_setting('app.biller_id', true), current_setting('app.bypass', true)"
            )
            assert cursor.fetchone() == (str(invoice.biller_id), "")


TABLE = re.compile(r'(?:FROM|JOIN)\s+"?(\w+)"?', re.I)


@pytest.mark.parametrize("page", sorted(page_cache.PAGES))
def test_a_kept_page_reads_no_table_its_fingerprint_does_not(portal: Any, console: Any, page: str) -> None:
    client, _account, invoice = portal
    url = {
        "portal:invoice_detail": bill_url(invoice),
        "portal:invoice_list": list_url(invoice.biller),
        "console:invoice_list": console_url(invoice.biller),
    }[page]
    if page.startswith("console:"):
        client = console[0]
    forget_kept_pages()
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200 and response.get(HEADER) == "miss"
    read = {t for q in queries.captured_queries for t in TABLE.findall(q["sql"])}
    read -= {page_cache.FUNCTION, "billing_keptanswer"}  # the function's own, and the answer kept after
    covered = set(TABLE.findall(page_cache.PAGES[page][0])) | {"django_session"}  # the session: by its data
    if "billing_customerchange" in covered:  # the customer's change counters: the tables that add to them
        covered |= changes_written_by()
    assert read - covered == set(), f"{page} reads tables its fingerprint does not: {read - covered}"


def changes_written_by() -> set[str]:
    """The tables whose triggers add to the change counters (billing.models.CustomerChange: a customer's
    invoices and decisions, a biller's customer rows), as the database has them."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT t.tgrelid::regclass::text FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid "
            "WHERE p.proname IN ('billing_customer_changed', 'billing_customer_rows_changed') "
            "AND t.tgenabled <> 'D'"
        )
        return {row[0] for row in cursor.fetchall()}


def test_a_kept_page_is_checked_on_a_new_connection_after_the_old_one_ended(portal: Any) -> None:
    """PostgreSQL restarted under a web process. In production Django's check at the start of a request
    replaces the connection first (config/postgresql); the test client skips that check, so the replay's
    own check meets the dead connection: it closes it and the whole stack answers, on a new one. The
    request after that is replayed again, its statement prepared anew."""
    client, _account, invoice = portal
    url = bill_url(invoice)
    kept(client, url)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    owner = {**owner_credentials(), "dbname": connection.settings_dict["NAME"]}
    with psycopg.connect(**owner, autocommit=True) as admin:  # type: ignore[arg-type]
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    time.sleep(0.2)  # the server's FATAL message reaches the socket
    answered = client.get(url)
    assert answered.status_code == 200 and answered[HEADER] != "replay" and b"REPLAY-1" in answered.content
    assert client.get(url)[HEADER] == "replay"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid


def test_the_kept_pages_csrf_token_is_djangos_masked_evenly_anew_each_time() -> None:
    """billing.page_cache.csrf_token: a token of the request's secret (Django unmasks it to the secret),
    another mask each time, each mask character as likely as any other (over 128,000 draws of 62
    characters: every count within 5 standard deviations of the mean, which a mask taken modulo 62
    without dropping bytes fails by 9), and the cookie renewed."""
    request = HttpRequest()
    secret = _get_new_csrf_string()
    request.META["CSRF_COOKIE"] = secret
    tokens = [page_cache.csrf_token(request) for _ in range(4000)]
    assert request.META["CSRF_COOKIE_NEEDS_UPDATE"] is True
    assert all(len(t) == 64 and _unmask_cipher_token(t) == secret for t in tokens)
    assert len(set(tokens)) == len(tokens)
    counts = Counter(c for t in tokens for c in t[:32])
    mean = 4000 * 32 / 62
    assert set(counts) == set(CSRF_ALLOWED_CHARS)
    assert all(abs(n - mean) < 5 * mean**0.5 for n in counts.values()), counts
    secrets = set()
    for _ in range(200):  # no secret yet: a new one, set as the cookie, as Django's _add_new_csrf_cookie
        fresh = HttpRequest()
        token = page_cache.csrf_token(fresh)
        secret = fresh.META["CSRF_COOKIE"]
        assert len(secret) == 32 and set(secret) <= set(CSRF_ALLOWED_CHARS)
        assert _unmask_cipher_token(token) == secret and fresh.META["CSRF_COOKIE_NEEDS_UPDATE"] is True
        secrets.add(secret)
    assert len(secrets) == 200


def test_a_replayed_page_to_a_browser_without_a_csrf_cookie_sets_one_its_forms_post_with(portal: Any) -> None:
    """The CSRF cookie is not part of a kept answer's key: a browser that lost it is given the kept page
    with a new secret in a new cookie, and the page's token is of that secret (the logout form posts)."""
    client, _account, invoice = portal
    url = list_url(invoice.biller)
    first, _again = kept(client, url)
    old = client.cookies[settings.CSRF_COOKIE_NAME].value
    del client.cookies[settings.CSRF_COOKIE_NAME]
    answered = client.get(url)
    assert answered[HEADER] == "replay"
    secret = answered.cookies[settings.CSRF_COOKIE_NAME].value
    assert secret != old and len(secret) == 32 and set(secret) <= set(CSRF_ALLOWED_CHARS)
    tokens = {t.decode() for t in TOKEN.findall(answered.content)}
    assert tokens and all(_unmask_cipher_token(t) == secret for t in tokens)
    assert without_tokens(answered.content) == without_tokens(first.content)
    logout = client.post(f"/b/{invoice.biller.slug}/my/logout/", {"csrfmiddlewaretoken": tokens.pop()})
    assert logout.status_code == 302, logout.content[:500]


def test_an_approval_decision_ends_the_kept_list_of_the_corporate_customer(biller: Biller) -> None:
    """A decision adds to the company's change counter (billing.models.CustomerChange, by trigger), which
    the list's fingerprint sums (LIST_SQL): a decision made by another approver of the company is seen at
    the next request of the viewer's list."""
    from billing.portal.services.invoices import invoice_decide

    company = make_customer(biller, kind="corporate")
    viewer = make_portal_account(biller, company, role=CustomerAccount.Role.VIEWER)
    approver = make_portal_account(biller, company, role=CustomerAccount.Role.APPROVER)
    invoice = make_invoice(biller=biller, customer=company, number="REPLAY-CORP")
    client = Client()
    client.force_login(viewer.user)
    url = list_url(biller)
    kept(client, url)
    invoice_decide(actor=approver.user, biller=biller, invoice=invoice, decision="approved")
    shown = client.get(url)
    assert shown.status_code == 200 and shown.get(HEADER) != "replay" and b"REPLAY-CORP" in shown.content
    assert client.get(url)[HEADER] == "replay"
