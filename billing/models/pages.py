"""Kept answers: a page the whole stack answered, kept to be given again to the same request of the same
session (``billing.page_replay``); and the change counters the fingerprints of the invoice lists read
instead of every row: a customer's invoices (``billing.page_cache.LIST_SQL``), a biller's customers
(``billing.page_cache.CONSOLE_LIST_SQL``)."""

from __future__ import annotations

from django.db import models

from billing.models.tenants import Biller
from billing.scoping import TenantManager


class KeptAnswer(models.Model):
    """The answer to one GET of a kept page (``billing.page_cache.PAGES``), under the key of everything in
    the request the stack may read (``billing.page_replay.request_key``), and what must still hold to
    give it again: the session row's data as the page was rendered with it, the page's fingerprint
    (the versions of every row it shows), the day. A cache: on PostgreSQL the table is UNLOGGED (no
    write-ahead log, emptied after a crash, not on standbys); a row past ``kept_until`` is never given
    and is deleted by beat (``billing.tasks.kept_answers_prune``). Read by the database function
    ``payeasy_replay`` only, which checks all of the above in the same statement."""

    key = models.CharField(max_length=64, primary_key=True)  # sha256, hex
    biller = models.ForeignKey(Biller, on_delete=models.PROTECT, related_name="+", db_index=False)
    page = models.CharField(max_length=40)  # the view's name, a key of billing.page_cache.PAGES
    user_pk = models.BigIntegerField()  # the fingerprint's arguments (billing.page_cache.arguments)
    invoice_pk = models.BigIntegerField(null=True)
    session_key = models.CharField(max_length=40)
    session_data = models.TextField()
    fingerprint = models.TextField()
    day = models.DateField()  # the biller's calendar day the page was rendered on (overdue rules)
    headers = models.TextField()  # JSON: [[name, value], …] of the answer but those made per answer
    body = models.BinaryField()  # billing.page_cache.kept_form: CSRF tokens marked; lz4 in PostgreSQL (0022)
    kept_until = models.DateTimeField(db_index=True)

    objects = TenantManager()

    def __str__(self) -> str:
        return f"{self.page} {self.key[:12]}"


class CustomerChange(models.Model):
    """A write to a customer's invoices or approval decisions, by any path: on PostgreSQL a trigger of
    ``billing_invoice`` and ``billing_invoiceapproval`` (migration 0020, one per statement: transition
    tables) inserts one row of ``weight`` 1 for each customer a statement wrote rows of — for an invoice
    moved to another customer, both. The fingerprint of a customer's invoice list is the sum of the
    weights of its rows (``billing.page_cache.LIST_SQL``): one index read instead of the versions of
    every invoice. The sum only grows with every write and is never the same for two different sets of
    committed writes (a later snapshot sees all an earlier one saw, and each write adds at least 1), so a
    list kept under it is never given after a change.

    Rows are only inserted by writers, never updated: two transactions writing invoices of one customer
    never wait for each other here (a counter row updated in place would make them, and deadlock two
    that write two invoices in opposite order). Beat folds the rows of each customer written since its
    last run into one ``folded`` row of their summed weight (``billing.page_cache.changes_compact``),
    which leaves every sum as it was; it finds those customers by a partial index of the rows not yet
    folded, so its work grows with the writes of the last minute, not with the number of customers.

    ``customer_id`` :data:`CUSTOMER_ROWS` (0, no customer's id) counts the writes to the biller's
    customer rows themselves (a name, a code): a trigger of ``billing_customer`` (migration 0021) adds 1
    for each biller a statement updated customers of. The console's invoice list shows the customers
    of its fifty invoices; its fingerprint reads this one sum instead of fifty customers' versions
    (``billing.page_cache.CONSOLE_LIST_SQL``)."""

    CUSTOMER_ROWS = 0  # customer_id of the counter of a biller's customer rows (ids start at 1)

    # the biller's row is checked where the write comes from (an invoice's, a decision's), not again here:
    # a 100,000-row import would pay one foreign-key check per customer
    biller = models.ForeignKey(
        Biller, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    customer_id = models.BigIntegerField()
    weight = models.BigIntegerField(default=1)
    # False for a trigger's row (the database's default: the trigger names no such column), True for beat's
    folded = models.BooleanField(default=False, db_default=False)

    objects = TenantManager()

    class Meta:
        indexes = [
            # the weights in the index: the sum is read from it alone (an index-only scan)
            models.Index(fields=["biller", "customer_id", "weight"], name="customer_change_customer"),
            # the customers written since beat last folded (billing.page_cache.COMPACT_SQL)
            models.Index(
                fields=["biller", "customer_id"],
                condition=models.Q(folded=False),
                name="customer_change_unfolded",
            ),
        ]

    def __str__(self) -> str:
        return f"customer {self.customer_id} +{self.weight}"
