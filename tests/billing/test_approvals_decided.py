"""A corporate customer's approver, once the bill is decided: the decision (who, when, result) instead of
the approve/reject form, only the opposite step offered, and the same decision twice refused."""

from __future__ import annotations

import datetime

import pytest
from django.test import Client
from django.utils import timezone, translation

from billing.models import Biller, Customer, InvoiceApproval
from tests.factories import make_customer, make_invoice, make_portal_account

pytestmark = pytest.mark.django_db


def my(biller: Biller, path: str = "") -> str:
    return f"/b/{biller.slug}/my/{path}"


@pytest.fixture
def setting(biller: Biller):  # type: ignore[no-untyped-def]
    company = make_customer(biller, kind=Customer.Kind.CORPORATE, name="株式会社青葉商事")
    approver = make_portal_account(biller, company, role="approver", name="承認 花子")
    other_approver = make_portal_account(biller, company, role="approver", name="承認 次郎")
    bill = make_invoice(
        biller=biller, customer=company, due_date=timezone.localdate() + datetime.timedelta(days=30)
    )
    return approver, other_approver, bill


def test_the_form_gives_way_to_the_decision(client: Client, biller: Biller, setting) -> None:  # type: ignore[no-untyped-def]
    approver, _other, bill = setting
    page_url, decide = my(biller, f"invoices/{bill.pk}/"), my(biller, f"invoices/{bill.pk}/decision/")
    client.force_login(approver.user)
    with translation.override("en"):
        before = client.get(page_url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
        assert 'name="decision" value="approved"' in before and "Record the decision" in before

        assert client.post(decide, {"decision": "approved", "comment": "確認済み"}).status_code == 302
        after = client.get(page_url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    decided_at = InvoiceApproval.objects.get(invoice=bill).decided_at
    assert "Record the decision" not in after
    assert 'type="radio"' not in after  # no approve/reject choice any more
    assert "Approved by 承認 花子 on" in after
    assert timezone.localtime(decided_at).strftime("%H:%M") in after
    # only the opposite step: withdrawing the approval, with its reason
    assert 'type="hidden" name="decision" value="rejected"' in after
    assert "Withdraw the approval" in after


def test_the_same_decision_twice_is_refused_with_who_and_when(
    client: Client, biller: Biller, setting
) -> None:  # type: ignore[no-untyped-def]
    approver, other_approver, bill = setting
    decide = my(biller, f"invoices/{bill.pk}/decision/")
    client.force_login(approver.user)
    assert client.post(decide, {"decision": "approved"}).status_code == 302
    # another approver on a stale page, or a second click: nothing is appended, the reason is said
    client.force_login(other_approver.user)
    with translation.override("en"):
        again = client.post(decide, {"decision": "approved"}, follow=True, HTTP_ACCEPT_LANGUAGE="en")
    page = again.content.decode()
    assert again.status_code == 200
    assert "This invoice is approved already: 承認 花子 approved it on" in page
    assert "Nothing was recorded." in page
    assert InvoiceApproval.objects.filter(invoice=bill).count() == 1

    # a rejection twice is refused the same way
    assert client.post(decide, {"decision": "rejected", "comment": "金額違い"}).status_code == 302
    with translation.override("en"):
        page = client.post(
            decide, {"decision": "rejected", "comment": "再度"}, follow=True, HTTP_ACCEPT_LANGUAGE="en"
        ).content.decode()
    assert "This invoice is rejected already: 承認 次郎 rejected it on" in page
    assert list(InvoiceApproval.objects.filter(invoice=bill).values_list("decision", flat=True)) == [
        "approved",
        "rejected",
    ]
    # the opposite step stays possible: a rejected bill can be approved after all
    page = client.get(my(biller, f"invoices/{bill.pk}/"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'type="hidden" name="decision" value="approved"' in page
    assert client.post(decide, {"decision": "approved"}).status_code == 302
    assert InvoiceApproval.objects.filter(invoice=bill).count() == 3


def test_the_service_refuses_a_second_approval_too(biller: Biller, setting) -> None:  # type: ignore[no-untyped-def]
    from billing.errors import Conflict
    from billing.portal.services import invoice_decide

    approver, other_approver, bill = setting
    invoice_decide(actor=approver.user, biller=biller, invoice=bill, decision="approved")
    with pytest.raises(Conflict, match="approved already"):
        invoice_decide(actor=other_approver.user, biller=biller, invoice=bill, decision="approved")
    assert InvoiceApproval.objects.filter(invoice=bill).count() == 1


def test_a_payer_sees_no_decision_form(client: Client, biller: Biller, setting) -> None:  # type: ignore[no-untyped-def]
    approver, _other, bill = setting
    payer = make_portal_account(biller, approver.customer, role="payer")
    client.force_login(approver.user)
    client.post(my(biller, f"invoices/{bill.pk}/decision/"), {"decision": "approved"})
    client.force_login(payer.user)
    page = client.get(my(biller, f"invoices/{bill.pk}/"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "invoice_decide" not in page and f"invoices/{bill.pk}/decision/" not in page
    assert "承認 花子" in page  # the decision is shown to everyone of the company
