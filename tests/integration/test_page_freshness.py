"""Pages are never stale after a change: a bill paid over the MPN line shows paid on the next reload.

On the real components, as production runs them: PostgreSQL as the application role (row-level
security), Redis as the Django cache and the broker, gunicorn with production settings serving the pages
(two workers: a page cached in one process must not outlive a change made by another), the commserver
over TCP and a Celery payments worker applying the payment. Customers log in through the portal's real
login form, a read-only operator through the console's.

Each page is loaded three times before a change (whatever caches it is warm), then the change is made
and waited for in the database — and each page is loaded exactly once more, at once: no sleeping and no
retrying after the database says it is done. What it must show then:

- paid (1200 消込 over the line): the bill page, the portal invoice list and the console list and detail
  say 入金済み and nowhere 未払い/発行済み for that bill (the bill page in English: Paid, not Unpaid); the
  open tab no longer lists it nor counts it;
- reversed (1300 取消): all of them say unpaid again;
- changed in the console: a published invoice cannot be edited (the console's edit form and its service
  refuse it: a correction is a cancellation and a new invoice), so the correction is made as the console
  makes it — a new draft edited (amount and due date: the console's list and page show the edit on
  their next load), the invoice cancelled, the draft published — and the customer's next reload shows
  the old bill cancelled and the new one with the edited amount and date;
- one customer's page is never served to another: two customers of one biller and one of another, each
  sees only their own invoice number on the same URLs, another's bill is not found, and nobody logged
  in (or logged in at another biller) sees any of it.
"""

from __future__ import annotations

import collections
import datetime
import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.db import connection
from django.utils import timezone, translation

from billing import services
from billing.errors import InvalidTransition
from billing.models import Biller, Customer, Invoice, Membership, User
from billing.templatetags.humanize_yen import yen
from payeasy.codec import Message
from payeasy.models import Notice
from tests.bench.conftest import production_env, production_password
from tests.bench.test_line import Processes
from tests.bench.test_whole_system import gunicorn_argv, http_get, log_in, wait_http
from tests.conftest import live_redis_url, need
from tests.factories import make_customer, make_invoice, make_portal_account
from tests.integration.conftest import celery_worker_argv, free_port, wait_for
from tests.payeasy import line_helpers as h

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PORTS = range(7800, 7900)
PASSWORD = "freshness portal password"
WARM = 3  # loads of every page before a change


def label(msgid: str) -> str:
    """A status label as the pages show it in Japanese (the default language): 未払い, 入金済み (paid),
    発行済み (published: the console's word for unpaid), 取消済み (cancelled)."""
    with translation.override("ja"):
        return str(translation.gettext(msgid))


UNPAID, PAID, PUBLISHED, CANCELLED = label("Unpaid"), label("Paid"), label("Published"), label("Cancelled")


# --- the running system ---------------------------------------------------------------------------------


@dataclass
class System:
    web: int  # gunicorn's port
    line: int  # the commserver's port


@pytest.fixture(scope="module")
def system(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """gunicorn (production settings, two workers), the commserver and a payments worker on the test
    database and REDIS_URL (cache and broker), emptied of what earlier runs cached."""
    need(connection.vendor == "postgresql", "this test needs PostgreSQL (set DATABASE_URL=postgres://…)")
    redis_url = live_redis_url(needed_by="the page caches need")
    import redis

    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match="*portal:page:*"):  # no page kept by an earlier run (ids are reused)
        client.delete(key)
    tmp = tmp_path_factory.mktemp("freshness")
    (tmp / "prometheus").mkdir()
    env = production_env(
        REDIS_URL=redis_url,
        DJANGO_EMAIL_BACKEND="locmem",
        PAYEASY_RUN_DIR=str(tmp / "run"),
        PROMETHEUS_MULTIPROC_DIR=str(tmp / "prometheus"),
    )
    processes = Processes(tmp, env)
    taken: set[int] = set()
    try:
        web, line = free_port(PORTS, taken), free_port(PORTS, taken)
        processes.start(
            "web",
            gunicorn_argv(),
            "Listening at:",
            WEB_BIND=f"127.0.0.1:{web}",
            WEB_WORKERS="2",
            WEB_GRACEFUL_TIMEOUT="2",
        )
        processes.start(
            "commserver",
            [sys.executable, "manage.py", "commserver", "--port", str(line), "--insecure-plaintext"],
            "commserver listening on",
        )
        processes.start(
            "worker-payments",
            celery_worker_argv(queues="payments", hostname=f"freshness-{os.getpid()}@%h"),
            " ready.",
        )
        wait_http(web, "/healthz")
        yield System(web, line)
    finally:
        processes.stop()


# --- people and pages -----------------------------------------------------------------------------------


@dataclass
class Person:
    biller: Biller
    customer: Customer
    email: str
    cookie: str = ""


def portal_customer(biller: Biller, encoded: str, name: str) -> Person:
    customer = make_customer(biller)
    email = f"{name}@freshness.example.jp"
    account = make_portal_account(biller, customer, email=email)
    User.objects.filter(pk=account.user_id).update(password=encoded)
    return Person(biller, customer, email)


def console_operator(biller: Biller, encoded: str, name: str) -> str:
    """A read-only console member (no second factor is required of operators); their e-mail."""
    email = f"{name}@freshness.example.jp"
    user = User.objects.create_user(email, None, name="閲覧担当")
    User.objects.filter(pk=user.pk).update(password=encoded)
    Membership.objects.create(biller=biller, user=user, role=Membership.Role.OPERATOR)
    return email


# "miss", "hit" or "replay" where a page is kept (billing.page_cache, billing.page_replay)
CACHE_HEADER = "x-page-cache"
served: collections.Counter[str] = collections.Counter()  # by that header: reported
last_served: dict[tuple[str, str], str] = {}  # (path, cookie) → that header of its last answer


def page(port: int, path: str, cookie: str, *, expect: int = 200) -> str:
    status, headers, body = http_get(port, path, cookie)
    assert status == expect, (path, status, body[:1500])
    how = [value for name, value in headers if name.lower() == CACHE_HEADER]
    served.update(how)
    last_served[(path, cookie)] = how[0] if how else ""
    return body


@pytest.fixture(autouse=True)
def _cache_report() -> Iterator[None]:
    """Prints how the pages were served (cache hits and misses), to see that the caches were in play."""
    served.clear()
    yield
    print(f"\npage cache: {dict(served) or 'no X-Page-Cache header seen'}")


def bill_url(inv: Invoice) -> str:
    return f"/b/{inv.biller.slug}/my/invoices/{inv.pk}/"


def list_url(biller: Biller, tab: str = "all") -> str:
    return f"/b/{biller.slug}/my/invoices/" + (f"?tab={tab}" if tab else "")


def console_list_url(biller: Biller) -> str:
    return f"/b/{biller.slug}/console/invoices/"


def console_detail_url(inv: Invoice) -> str:
    return f"/b/{inv.biller.slug}/console/invoices/{inv.pk}/"


STATUS_SPAN = re.compile(r'<span class="status status-([\w-]+)">([^<]*)</span>')


def row_of(html: str, number: str) -> str | None:
    """The table row of the invoice ``number`` (its number is the row's link text), or None."""
    rows = [row for row in re.findall(r"<tr\b.*?</tr>", html, re.S) if f">{number}</a>" in row]
    assert len(rows) <= 1, rows
    return rows[0] if rows else None


def row_status(html: str, number: str) -> tuple[str, str]:
    """(status class, label) of the invoice's row in a list."""
    row = row_of(html, number)
    assert row is not None, f"{number} is not listed:\n{html[:3000]}"
    found = STATUS_SPAN.search(row)
    assert found, row
    return found.group(1), found.group(2).strip()


def open_count(html: str) -> int:
    """The count the portal list's "open" tab shows (none: 0)."""
    tab = re.search(r'<a href="\?tab=open"[^>]*>(.*?)</a>', html, re.S)
    assert tab, html[:3000]
    count = re.search(r'class="count">\((\d+)\)', tab.group(1))
    return int(count.group(1)) if count else 0


def bill_status(html: str) -> tuple[str, str]:
    """(data-status, the text of the status box) of a portal bill page."""
    box = re.search(r'<div id="invoice-status"[^>]*data-status="(\w+)"[^>]*>(.*?)</div>', html, re.S)
    assert box, html[:3000]
    return box.group(1), re.sub(r"<[^>]+>", "", box.group(2))


def console_status(html: str) -> tuple[str, str]:
    """(status class, label) in the heading of a console invoice page."""
    heading = re.search(r"<h1\b.*?</h1>", html, re.S)
    assert heading, html[:3000]
    found = STATUS_SPAN.search(heading.group(0))
    assert found, heading.group(0)
    return found.group(1), found.group(2).strip()


# --- what each page must say ----------------------------------------------------------------------------


@dataclass
class Views:
    """The four pages of one invoice: the customer's bill and list, the operator's list and detail."""

    port: int
    inv: Invoice
    customer: str  # Cookie headers
    operator: str

    def load(self) -> dict[str, str]:
        """Each page once (the list twice: every invoice, and the default tab of open ones)."""
        port, inv = self.port, self.inv
        return {
            "bill": page(port, bill_url(inv), self.customer),
            "list": page(port, list_url(inv.biller), self.customer),
            "open": page(port, list_url(inv.biller, tab=""), self.customer),
            "console list": page(port, console_list_url(inv.biller), self.operator),
            "console detail": page(port, console_detail_url(inv), self.operator),
        }

    def warm(self) -> None:
        for _ in range(WARM):
            self.assert_unpaid(self.load())
        # the kept pages were last given by the replay before the middlewares: what follows checks that
        # it, too, never gives a page from before a change
        port, inv = self.port, self.inv
        for path, cookie in (
            (bill_url(inv), self.customer),
            (list_url(inv.biller), self.customer),
            (list_url(inv.biller, tab=""), self.customer),
            (console_list_url(inv.biller), self.operator),
        ):
            assert last_served[(path, cookie)] == "replay", (path, last_served[(path, cookie)], port)

    def says(self, pages: dict[str, str]) -> dict[str, object]:
        """What the pages say of the invoice: each page's status and which status words it shows."""
        number = self.inv.number
        status, text = bill_status(pages["bill"])
        detail = pages["console detail"]
        return {
            "bill": (status, words(text, UNPAID, PAID)),
            "bill offers to pay": "data-hide-when-paid" in pages["bill"],
            "list": (
                row_status(pages["list"], number)[0],
                words(row_of(pages["list"], number), UNPAID, PAID),
            ),
            "open tab lists it": row_of(pages["open"], number) is not None,
            "open tab count": (open_count(pages["list"]), open_count(pages["open"])),
            "console list": (
                row_status(pages["console list"], number)[0],
                words(row_of(pages["console list"], number), PUBLISHED, PAID),
            ),
            "console detail": (console_status(detail), words(detail, f"<dd>{PUBLISHED}", f"<dd>{PAID}")),
        }

    def assert_unpaid(self, pages: dict[str, str]) -> None:
        assert self.says(pages) == {
            "bill": ("published", [UNPAID]),
            "bill offers to pay": True,
            "list": ("published", [UNPAID]),
            "open tab lists it": True,
            "open tab count": (1, 1),
            "console list": ("published", [PUBLISHED]),
            "console detail": (("published", PUBLISHED), [f"<dd>{PUBLISHED}"]),
        }

    def assert_paid(self, pages: dict[str, str]) -> None:
        assert self.says(pages) == {
            "bill": ("paid", [PAID]),
            "bill offers to pay": False,
            "list": ("paid", [PAID]),
            "open tab lists it": False,
            "open tab count": (0, 0),
            "console list": ("paid", [PAID]),
            "console detail": (("paid", PAID), [f"<dd>{PAID}"]),
        }


def words(text: str | None, *candidates: str) -> list[str]:
    """Which of ``candidates`` occur in ``text``, in their order."""
    return [word for word in candidates if word in (text or "")]


# --- the line -------------------------------------------------------------------------------------------


def line_send(port: int, message: Message) -> None:
    """One request over the MPN line, answered 0000."""
    with h.LineClient(port) as client:
        client.send(message)
        answer = client.receive(1)[0]
    assert answer.response_code == "0000", answer


def wait_applied(message: Message, inv: Invoice, status: str) -> float:
    """Seconds until the notice of ``message`` is applied and the invoice has ``status`` in the database."""
    started = time.monotonic()

    def done() -> bool:
        applied = Notice.objects.filter(
            transaction_key=message.transaction_key, applied_at__isnull=False
        ).exists()
        return applied and Invoice.objects.filter(pk=inv.pk, status=status).exists()

    wait_for(done, timeout=30)
    return time.monotonic() - started


def unpaid_invoice(biller: Biller, customer: Customer, number: str, price: int = 1200) -> Invoice:
    today = timezone.localdate()
    inv = make_invoice(
        biller=biller,
        customer=customer,
        number=number,
        amount=price,
        issue_date=today,
        due_date=today + datetime.timedelta(days=30),
    )
    return Invoice.objects.select_related("biller").get(pk=inv.pk)


# --- the tests ------------------------------------------------------------------------------------------


def test_paid_then_reversed_over_the_line_shows_on_the_next_reload(system: System) -> None:
    encoded = production_password(PASSWORD)
    biller = h.line_biller()
    payer = portal_customer(biller, encoded, "payer")
    operator = console_operator(biller, encoded, "operator")
    inv = unpaid_invoice(biller, payer.customer, "FRESH-PAY-1")
    views = Views(
        system.web,
        inv,
        log_in(system.web, payer.email, password=PASSWORD, slug=biller.slug),
        log_in(system.web, operator, password=PASSWORD, path=f"/b/{biller.slug}/accounts/login/"),
    )
    views.warm()
    line_send(system.line, h.open_day(biller))

    payment = h.payment(biller, inv)
    line_send(system.line, payment)
    paid_after = wait_applied(payment, inv, Invoice.Status.PAID)
    views.assert_paid(views.load())  # once, at once
    # in English too (a cached page is per language): "Paid", never "Unpaid"
    english = page(system.web, bill_url(inv), f"{views.customer}; django_language=en")
    status, text = bill_status(english)
    assert status == "paid" and "Paid" in text and "Unpaid" not in text, text

    for _ in range(WARM):  # the paid pages warm now
        views.assert_paid(views.load())
    reversal = h.reversal(biller, payment)
    line_send(system.line, reversal)
    reversed_after = wait_applied(reversal, inv, Invoice.Status.PUBLISHED)
    views.assert_unpaid(views.load())  # once, at once
    print(f"\npaid in the database {paid_after:.2f} s after the ack, reversed {reversed_after:.2f} s after")


def test_a_console_correction_shows_on_the_customers_next_reload(system: System) -> None:
    encoded = production_password(PASSWORD)
    biller = h.line_biller()
    payer = portal_customer(biller, encoded, "corrected")
    operator = console_operator(biller, encoded, "corrector")
    admin = User.objects.create_user("admin@freshness.example.jp", None, name="管理者")
    Membership.objects.create(biller=biller, user=admin, role=Membership.Role.ADMIN)
    old = unpaid_invoice(biller, payer.customer, "FRESH-OLD-1", price=1200)
    views = Views(
        system.web,
        old,
        log_in(system.web, payer.email, password=PASSWORD, slug=biller.slug),
        log_in(system.web, operator, password=PASSWORD, path=f"/b/{biller.slug}/accounts/login/"),
    )
    views.warm()
    # the console's edit form refuses a published invoice (409, invoice_locked.html): its service does
    with pytest.raises(InvalidTransition):
        services.invoice_update_draft(
            actor=admin, biller=biller, invoice=old, data={"due_date": old.due_date}
        )
    views.assert_unpaid(views.load())

    # the correction as the console makes it: cancel (its cancel form), a new draft, edited, published
    today = timezone.localdate()
    draft = make_invoice(
        biller=biller,
        customer=payer.customer,
        number="FRESH-NEW-1",
        amount=1200,
        issue_date=today,
        due_date=today + datetime.timedelta(days=30),
        published=False,
        actor=admin,
    )
    draft = Invoice.objects.select_related("biller").get(pk=draft.pk)
    new_due = today + datetime.timedelta(days=45)

    def console_draft() -> tuple[str, str]:
        """The draft's row in the console list, and the total and due date its console page shows (not
        its history, which keeps the amount before the edit)."""
        listing = page(system.web, console_list_url(biller), views.operator)
        detail = page(system.web, console_detail_url(draft), views.operator)
        total = re.search(r"<tfoot>.*?<strong>([^<]*)</strong>", detail, re.S)
        due = re.search(rf"<dt>{label('Due date')}</dt><dd>([^<]*)</dd>", detail)
        assert total and due, detail[:3000]
        return row_of(listing, draft.number) or "", f"{total.group(1)} {due.group(1)}"

    for _ in range(WARM):
        listed = page(system.web, list_url(biller), views.customer)
        assert row_of(listed, draft.number) is None  # a draft is not the customer's to see
        for html in console_draft():
            assert yen(1320) in html and draft.due_date.isoformat() in html, html[:3000]
    edited = services.invoice_update_draft(
        actor=admin,
        biller=biller,
        invoice=draft,
        data={
            "customer": payer.customer,
            "number": draft.number,
            "issue_date": today,
            "due_date": new_due,
            "description": "11月分電気料金(訂正)",
            "lines": [{"description": "基本料金", "quantity": 1, "unit_price": 3400, "tax_category": "10"}],
        },
    )
    for html in console_draft():  # once, at once: the edit shows in the console
        shown = (yen(3740) in html, new_due.isoformat() in html, yen(1320) in html)
        assert shown == (True, True, False), html[:3000]
    services.invoice_cancel(actor=admin, biller=biller, invoice=old, reason="金額訂正")
    services.invoice_publish(actor=admin, biller=biller, invoice=edited)
    new = Invoice.objects.select_related("biller").get(pk=draft.pk)
    assert (new.status, new.total, new.due_date) == ("published", 3740, new_due)
    assert Invoice.objects.get(pk=old.pk).status == Invoice.Status.CANCELLED

    pages = views.load()  # once, at once: the customer sees the correction
    status, text = bill_status(pages["bill"])
    assert status == "cancelled" and CANCELLED in text and UNPAID not in text, text
    assert "data-hide-when-paid" not in pages["bill"]
    assert row_status(pages["list"], old.number) == ("cancelled", CANCELLED)
    assert row_of(pages["open"], old.number) is None
    assert open_count(pages["list"]) == open_count(pages["open"]) == 1  # the new one alone
    assert row_status(pages["console list"], old.number) == ("cancelled", CANCELLED)
    assert console_status(pages["console detail"]) == ("cancelled", CANCELLED)
    for listing in (pages["list"], pages["open"]):
        row = row_of(listing, new.number)
        assert row is not None, listing[:3000]
        assert yen(3740) in row and new_due.isoformat() in row, row
        assert yen(1320) not in row and old.due_date.isoformat() not in row, row
    console_row = row_of(pages["console list"], new.number) or ""
    assert yen(3740) in console_row and new_due.isoformat() in console_row, console_row
    bill = page(system.web, bill_url(new), views.customer)
    assert bill_status(bill)[0] == "published" and yen(3740) in bill and new_due.isoformat() in bill


def test_a_cached_page_is_never_served_to_another_customer(system: System) -> None:
    encoded = production_password(PASSWORD)
    biller, other_biller = h.line_biller(), h.line_biller()
    people = {
        "a1": portal_customer(biller, encoded, "a1"),
        "a2": portal_customer(biller, encoded, "a2"),
        "b1": portal_customer(other_biller, encoded, "b1"),
    }
    bills = {
        key: unpaid_invoice(person.biller, person.customer, f"FRESH-{key.upper()}-{n}", price=1000 + 100 * n)
        for n, (key, person) in enumerate(people.items(), 1)
    }
    numbers = {key: inv.number for key, inv in bills.items()}
    for person in people.values():
        person.cookie = log_in(
            system.web, person.email, password=PASSWORD, path=f"/b/{person.biller.slug}/my/login/"
        )
    operator_b = log_in(
        system.web,
        console_operator(other_biller, encoded, "opb"),
        password=PASSWORD,
        path=f"/b/{other_biller.slug}/accounts/login/",
    )

    def sees(key: str, html: str) -> set[str]:
        return {k for k, number in numbers.items() if number in html} - {key}

    for _round in range(WARM):  # interleaved: each customer's page right after another's, same URLs
        for key, person in people.items():
            for path in (list_url(person.biller), list_url(person.biller, tab=""), bill_url(bills[key])):
                html = page(system.web, path, person.cookie)
                shown = (numbers[key] in html, sees(key, html))
                assert shown == (True, set()), f"{key} at {path}: own number shown, others' {shown}"
    # another customer's bill, at its own URL: not found, nor anything of it
    for key, other in (("a1", "a2"), ("a2", "a1")):
        html = page(system.web, bill_url(bills[other]), people[key].cookie, expect=404)
        assert numbers[other] not in html
    # a customer of another biller, and nobody logged in, on the first biller's cached URLs
    for cookie in (people["b1"].cookie, ""):
        for path in (
            list_url(biller),
            list_url(biller, tab=""),
            bill_url(bills["a1"]),
            bill_url(bills["a2"]),
        ):
            status, _headers, html = http_get(system.web, path, cookie)
            assert status in {302, 403, 404}, (path, status)
            assert not {numbers["a1"], numbers["a2"]} & {n for n in numbers.values() if n in html}
    # the console of the other biller, by its own operator: nothing of the first biller's
    html = page(system.web, console_list_url(other_biller), operator_b)
    assert numbers["b1"] in html and numbers["a1"] not in html and numbers["a2"] not in html
    status, _headers, html = http_get(system.web, console_detail_url(bills["a1"]), operator_b)
    assert status in {302, 403, 404} and numbers["a1"] not in html, status
