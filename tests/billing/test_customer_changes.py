"""The change counters of customers (billing.models.CustomerChange) on PostgreSQL as production runs it.

The invoice list's fingerprint is the sum of a customer's change weights (billing.page_cache.LIST_SQL), so
that sum must grow with every write to the customer's invoices and approval decisions by any path — the
ORM, a raw statement of the application role, a CSV import — and with no other customer's; an invoice
moved to another customer changes both lists. Writers only insert: two transactions writing invoices of
one customer do not wait for each other. Beat's compaction folds each customer's rows into one and leaves
every sum, and so every kept list, as it was. The rows are under the tenant policy like every row with
a biller. The biller's counter of customer rows (CustomerChange.CUSTOMER_ROWS, which the console's list
reads instead of its customers' versions) grows with every update of the biller's customers and no
other biller's.
"""

from __future__ import annotations

import io
import time
from typing import Any

import psycopg
import pytest
from django.db import connection, transaction
from django.test import Client

from billing import page_cache, services
from billing.models import Biller, Customer, CustomerAccount, CustomerChange, ImportJob, Invoice, Membership
from billing.tenancy import cross_tenant
from tests.billing.test_page_replay import HEADER, console_url, kept, list_url
from tests.conftest import app_credentials, need
from tests.factories import make_customer, make_invoice, make_member, make_portal_account

# every write its own transaction, as in production (the triggers' rows are committed and seen by the next)
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgresql() -> None:
    need(connection.vendor == "postgresql", "the change counters are written by PostgreSQL triggers")


def sums(*customers: Customer) -> list[int]:
    """Each customer's summed change weight, as the list's fingerprint reads it."""
    with cross_tenant("tests"), connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.id, COALESCE(sum(x.weight), 0) FROM unnest(%s::bigint[]) c(id) "
            "LEFT JOIN billing_customerchange x ON x.customer_id = c.id GROUP BY c.id",
            [[c.pk for c in customers]],
        )
        found = dict(cursor.fetchall())
    return [found[c.pk] for c in customers]


def rows_of(customer: Customer) -> int:
    with cross_tenant("tests"):
        return CustomerChange.objects.cross_tenant("tests").filter(customer_id=customer.pk).count()


def app_connection(biller: Biller | None = None) -> psycopg.Connection[Any]:
    """A connection of the application role (not the owner: grants and row-level security apply), in the
    tenant of ``biller`` for its whole session when given."""
    conn = psycopg.connect(**app_credentials(), autocommit=True)  # type: ignore[arg-type]
    if biller is not None:
        conn.execute("SELECT set_config('app.biller_id', %s, false)", [str(biller.pk)])
    return conn


CSV = (
    "請求番号,外部ID,顧客コード,請求日,支払期限,料金名,品目,数量,単価,税区分,請求金額\n"
    "CHG-0001,chg-1,CHG-A,2026-11-01,2026-11-30,11月分,基本料金,1,1000,10,\n"
    "CHG-0002,chg-2,CHG-A,2026-11-01,2026-11-30,11月分,基本料金,1,2000,10,\n"
)


def _orm_create(biller: Biller, mine: Customer, invoice: Invoice) -> None:
    make_invoice(biller=biller, customer=mine, number="CHG-NEW")


def _orm_update(biller: Biller, mine: Customer, invoice: Invoice) -> None:
    Invoice.objects.filter(pk=invoice.pk).update(description="訂正")


def _orm_save(biller: Biller, mine: Customer, invoice: Invoice) -> None:
    invoice.description = "訂正"
    invoice.save(update_fields=["description"])


def _draft_deleted(biller: Biller, mine: Customer, invoice: Invoice) -> None:
    draft = make_invoice(biller=biller, customer=mine, number="CHG-DRAFT", published=False)
    before = sums(mine)[0]
    Invoice.objects.filter(pk=draft.pk).delete()
    assert sums(mine)[0] > before  # the delete's own change, not only the draft's insert


def _raw_sql(biller: Biller, mine: Customer, invoice: Invoice) -> None:
    with app_connection(biller) as conn:
        updated = conn.execute(
            "UPDATE billing_invoice SET description = 'SQL' WHERE id = %s", [invoice.pk]
        ).rowcount
    assert updated == 1


def _csv_import(biller: Biller, mine: Customer, invoice: Invoice) -> None:
    job = services.import_job_create(
        actor=None,
        biller=biller,
        upload=io.BytesIO(CSV.encode()),
        file_name="changes.csv",
        encoding="",
        publish=True,
        run_now=True,
    )
    assert job.status == ImportJob.Status.SUCCEEDED, job.errors
    done = services.import_job_confirm(actor=None, biller=biller, preview_id=job.pk, run_now=True)
    assert done.status == ImportJob.Status.SUCCEEDED and done.invoices_new == 2


WRITES = {
    "created": _orm_create,
    "updated": _orm_update,
    "saved": _orm_save,
    "draft deleted": _draft_deleted,
    "raw SQL of the application role": _raw_sql,
    "CSV import": _csv_import,
}


@pytest.mark.parametrize("write", WRITES, ids=list(WRITES))
def test_every_write_adds_to_its_customers_sum_and_no_others(
    biller: Biller, other_biller: Biller, write: str
) -> None:
    mine = make_customer(biller, code="CHG-A")
    neighbour = make_customer(biller, code="CHG-B")
    stranger = make_customer(other_biller, code="CHG-A")
    invoice = make_invoice(biller=biller, customer=mine, number="CHG-1")
    make_invoice(biller=biller, customer=neighbour, number="CHG-2")
    make_invoice(biller=other_biller, customer=stranger, number="CHG-1")
    before = sums(mine, neighbour, stranger)
    WRITES[write](biller, mine, invoice)
    after = sums(mine, neighbour, stranger)
    assert after[0] > before[0], write
    assert after[1:] == before[1:], write


def test_a_statement_writing_many_invoices_of_a_customer_adds_one_row(biller: Biller) -> None:
    """Statement-level: an update of 30 invoices inserts one row per customer, not one per invoice (an
    import of 100,000 rows pays one insert per customer)."""
    mine, theirs = make_customer(biller), make_customer(biller)
    for n in range(20):
        make_invoice(biller=biller, customer=mine, number=f"CHG-M{n}")
    for n in range(10):
        make_invoice(biller=biller, customer=theirs, number=f"CHG-T{n}")
    rows = rows_of(mine), rows_of(theirs)
    assert Invoice.objects.filter(biller=biller).update(description="一括訂正") == 30
    assert (rows_of(mine), rows_of(theirs)) == (rows[0] + 1, rows[1] + 1)


def test_an_invoice_moved_to_another_customer_ends_both_kept_lists(biller: Biller) -> None:
    first, second = make_portal_account(biller), make_portal_account(biller)
    invoice = make_invoice(biller=biller, customer=first.customer, number="CHG-MOVED")
    make_invoice(biller=biller, customer=second.customer, number="CHG-STAYS")
    clients = []
    for account in (first, second):
        client = Client()
        client.force_login(account.user)
        kept(client, list_url(biller))
        clients.append(client)
    Invoice.objects.filter(pk=invoice.pk).update(customer=second.customer)
    lists = [client.get(list_url(biller)) for client in clients]
    assert [r.get(HEADER) != "replay" for r in lists] == [True, True]
    assert b"CHG-MOVED" not in lists[0].content
    assert b"CHG-MOVED" in lists[1].content and b"CHG-STAYS" in lists[1].content


def test_two_transactions_writing_one_customers_invoices_do_not_wait_for_each_other(biller: Biller) -> None:
    """The first transaction holds its write open; the second writes another invoice of the same customer
    and commits under a lock timeout, then the first commits: both changes counted."""
    mine = make_customer(biller)
    a = make_invoice(biller=biller, customer=mine, number="CHG-A1")
    b = make_invoice(biller=biller, customer=mine, number="CHG-B1")
    before = sums(mine)[0]
    with app_connection(biller) as one, app_connection(biller) as two:
        one.execute("BEGIN")
        one.execute("UPDATE billing_invoice SET description = 'one' WHERE id = %s", [a.pk])
        two.execute("SET lock_timeout = '2s'")
        started = time.monotonic()
        with two.transaction():
            two.execute("UPDATE billing_invoice SET description = 'two' WHERE id = %s", [b.pk])
        assert time.monotonic() - started < 1
        assert sums(mine)[0] == before + 1  # the second's change; the first's not yet committed
        one.execute("COMMIT")
    assert sums(mine)[0] == before + 2


def test_compaction_folds_each_customers_rows_into_one_and_keeps_the_kept_list(biller: Biller) -> None:
    account = make_portal_account(biller)
    others = [make_customer(biller) for _ in range(3)]
    for n in range(4):
        make_invoice(biller=biller, customer=account.customer, number=f"CHG-K{n}")
        for i, other in enumerate(others):
            make_invoice(biller=biller, customer=other, number=f"CHG-O{i}-{n}")
    customers = [account.customer, *others]
    before = sums(*customers)
    assert all(rows_of(c) >= 4 for c in customers)
    client = Client()
    client.force_login(account.user)
    kept(client, list_url(biller))

    assert page_cache.changes_compact(batch=1) == 4  # one customer a transaction: the loop went round
    assert [rows_of(c) for c in customers] == [1, 1, 1, 1]
    assert sums(*customers) == before
    assert client.get(list_url(biller))[HEADER] == "replay"  # nothing it shows changed
    assert page_cache.changes_compact() == 0  # nothing left to fold

    Invoice.objects.filter(customer=account.customer, number="CHG-K0").update(description="訂正後")
    after = client.get(list_url(biller))
    assert after.status_code == 200 and after.get(HEADER) != "replay"
    assert client.get(list_url(biller))[HEADER] == "replay"
    # folded again: a row of weight 4 and one of weight 1 make 5, not 2
    before = sums(*customers)
    assert rows_of(account.customer) == 2
    assert page_cache.changes_compact() == 1
    assert sums(*customers) == before and rows_of(account.customer) == 1
    assert client.get(list_url(biller))[HEADER] == "replay"


def test_the_change_rows_are_under_the_tenant_policy(biller: Biller, other_biller: Biller) -> None:
    make_invoice(biller=biller, number="CHG-P1")
    make_invoice(biller=other_biller, number="CHG-P2")
    with app_connection() as conn:  # no tenant: nothing
        assert conn.execute("SELECT count(*) FROM billing_customerchange").fetchone() == (0,)
    with app_connection(biller) as conn:
        billers = conn.execute("SELECT DISTINCT biller_id FROM billing_customerchange").fetchall()
        assert billers == [(biller.pk,)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            conn.execute(
                "INSERT INTO billing_customerchange (biller_id, customer_id, weight) VALUES (%s, 1, 1)",
                [other_biller.pk],
            )


def test_a_decision_by_another_approver_adds_to_the_companys_sum(biller: Biller) -> None:
    from billing.portal.services.invoices import invoice_decide

    company = make_customer(biller, kind="corporate")
    approver = make_portal_account(biller, company, role=CustomerAccount.Role.APPROVER)
    invoice = make_invoice(biller=biller, customer=company, number="CHG-CORP")
    before = sums(company)[0]
    invoice_decide(actor=approver.user, biller=biller, invoice=invoice, decision="approved")
    assert sums(company)[0] > before


def customer_rows(biller: Biller) -> tuple[int, int]:
    """The biller's counter of customer rows as the console list's fingerprint reads it: (sum, rows)."""
    with cross_tenant("tests"), connection.cursor() as cursor:
        cursor.execute(
            "SELECT COALESCE(sum(weight), 0), count(*) FROM billing_customerchange"
            " WHERE biller_id = %s AND customer_id = %s",
            [biller.pk, CustomerChange.CUSTOMER_ROWS],
        )
        total, rows = cursor.fetchone()
    return int(total), int(rows)


def test_an_update_of_a_billers_customers_adds_one_row_to_its_counter_of_customer_rows(
    biller: Biller, other_biller: Biller
) -> None:
    """Statement-level: one row for the biller however many of its customers a statement updated; the
    application role's own statement counts; a new customer (on no invoice yet), an update of no row and
    a row only locked add nothing; another biller's counter is never touched."""
    mine = [make_customer(biller) for _ in range(30)]
    before, theirs = customer_rows(biller), customer_rows(other_biller)
    make_customer(biller)
    assert Customer.objects.filter(biller=biller, code="NO-SUCH-CODE").update(name="誰も") == 0
    with transaction.atomic():
        Customer.objects.select_for_update().get(pk=mine[0].pk)
    assert customer_rows(biller) == before
    assert Customer.objects.filter(biller=biller).update(name_kana="カナ") == 31
    assert customer_rows(biller) == (before[0] + 1, before[1] + 1)
    with app_connection(biller) as conn:
        conn.execute("UPDATE billing_customer SET name = name || '様' WHERE id = %s", [mine[1].pk])
    assert customer_rows(biller) == (before[0] + 2, before[1] + 2)
    assert customer_rows(other_biller) == theirs


def test_a_renamed_customer_ends_its_billers_kept_console_list_and_no_other(
    biller: Biller, other_biller: Biller
) -> None:
    admin = make_member(biller, role=Membership.Role.ADMIN)
    client = Client()
    client.force_login(admin)
    shown = make_customer(biller, name="旧名商事")
    make_invoice(biller=biller, customer=shown, number="CHG-CONSOLE")
    stranger = make_customer(other_biller)
    make_invoice(biller=other_biller, customer=stranger, number="CHG-CONSOLE")
    kept(client, console_url(biller))
    Customer.objects.filter(pk=stranger.pk).update(name="他社の顧客")  # another biller's: still replayed
    assert client.get(console_url(biller))[HEADER] == "replay"
    shown.name = "新名商事"
    shown.save()
    page = client.get(console_url(biller))
    assert page.status_code == 200 and page.get(HEADER) != "replay"
    assert "新名商事".encode() in page.content and "旧名商事".encode() not in page.content
    assert client.get(console_url(biller))[HEADER] == "replay"
    assert page_cache.changes_compact() >= 1  # folded: the sum, and so the kept list, as it was
    assert client.get(console_url(biller))[HEADER] == "replay"
