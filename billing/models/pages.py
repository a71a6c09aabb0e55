"""Kept answers: a page the whole stack answered, kept to be given again to the same request of the same
session (``billing.page_replay``)."""

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
    body = models.BinaryField()  # billing.page_cache.kept_form: compressed, CSRF tokens marked
    kept_until = models.DateTimeField(db_index=True)

    objects = TenantManager()

    def __str__(self) -> str:
        return f"{self.page} {self.key[:12]}"
