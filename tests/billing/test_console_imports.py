"""Console CSV import: upload → preview → import → result; errors named; tenants kept apart."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from billing.models import Biller, ImportJob, Invoice, Membership
from tests.factories import make_biller, make_customer, make_member
from tests.tenancy import assert_cross_tenant_hidden

pytestmark = pytest.mark.django_db

CSV = (
    "請求番号,外部ID,顧客コード,請求日,支払期限,料金名,品目,数量,単価,税区分\n"
    "2026-11-0001,cis-1,D-1,2026-11-01,2026-11-30,11月分電気料金,基本料金,1,1200,10\n"
    "2026-11-0002,cis-2,D-1,2026-11-01,2026-11-30,11月分電気料金,基本料金,1,1200,8%\n"
)


@pytest.fixture(autouse=True)
def _run_queued_jobs(django_capture_on_commit_callbacks, monkeypatch):  # type: ignore[no-untyped-def]
    """Import jobs are queued after commit; run them (Celery is eager in tests) as each request finishes."""
    from django.test import Client as DjangoClient

    original = DjangoClient.request

    def request(self, **kwargs):  # type: ignore[no-untyped-def]
        with django_capture_on_commit_callbacks(execute=True):
            return original(self, **kwargs)

    monkeypatch.setattr(DjangoClient, "request", request)


def upload(client: Client, biller: Biller, data: bytes, **extra: str):  # type: ignore[no-untyped-def]
    file = SimpleUploadedFile("invoices.csv", data, content_type="text/csv")
    return client.post(f"/b/{biller.slug}/console/imports/", {"file": file, "publish": "on", **extra})


def test_upload_preview_import(admin_client: Client, biller: Biller) -> None:
    make_customer(biller, code="D-1")
    response = upload(admin_client, biller, CSV.encode("cp932"))
    assert response.status_code == 302
    preview = ImportJob.objects.get(biller=biller)
    page = admin_client.get(response["Location"]).content.decode()
    assert preview.status == "succeeded" and preview.encoding == "cp932" and not Invoice.objects.exists()
    assert "Import 2 invoices" in page
    confirmed = admin_client.post(f"/b/{biller.slug}/console/imports/{preview.pk}/import/")
    job = ImportJob.objects.get(preview_of=preview)
    assert confirmed["Location"].endswith(f"/imports/{job.pk}/") and job.status == "succeeded"
    assert Invoice.objects.filter(biller=biller, status="published").count() == 2
    again = admin_client.post(f"/b/{biller.slug}/console/imports/{preview.pk}/import/", follow=True)
    assert "already imported" in again.content.decode()
    assert Invoice.objects.count() == 2


def test_bad_row_is_shown_with_row_and_column(admin_client: Client, biller: Biller) -> None:
    make_customer(biller, code="D-1")
    bad = CSV.replace("1200,8%", "12O0,8%").encode("cp932")
    response = upload(admin_client, biller, bad)
    page = admin_client.get(response["Location"]).content.decode()
    assert "<td>3</td><td>Unit price</td>" in page
    assert "Import 2 invoices" not in page
    job = ImportJob.objects.get()
    errors = admin_client.get(f"/b/{biller.slug}/console/imports/{job.pk}/errors.csv")
    assert errors.status_code == 200
    assert "3,Unit price," in errors.content.decode("utf-8-sig")


def test_empty_upload_is_refused_by_name(admin_client: Client, biller: Biller) -> None:
    response = upload(admin_client, biller, b"")
    assert response.status_code == 400
    assert not ImportJob.objects.exists()


def test_operator_cannot_import(client: Client, biller: Biller) -> None:
    client.force_login(make_member(biller, role=Membership.Role.OPERATOR))
    assert upload(client, biller, CSV.encode()).status_code == 403
    assert client.get(f"/b/{biller.slug}/console/imports/").status_code == 200
    assert not ImportJob.objects.exists()


def test_another_tenants_import_is_hidden(admin_client: Client, biller: Biller) -> None:
    other = make_biller()
    make_customer(other, code="D-1")
    other_admin = Client()
    other_admin.force_login(make_member(other))
    upload(other_admin, other, CSV.encode())
    theirs = ImportJob.objects.get(biller=other)
    base = f"/b/{biller.slug}/console/imports"
    assert_cross_tenant_hidden(admin_client, lambda pk: f"{base}/{pk}/", theirs.pk)
    assert_cross_tenant_hidden(admin_client, lambda pk: f"{base}/{pk}/errors.csv", theirs.pk)
    assert_cross_tenant_hidden(
        admin_client, lambda pk: f"{base}/{pk}/import/", theirs.pk, method="post", data={}
    )
    assert not Invoice.objects.exists()


def test_problems_are_reported_in_the_uploaders_language(admin_client: Client, biller: Biller) -> None:
    make_customer(biller, code="D-1")
    bad = CSV.replace("1200,8%", "1200,5").encode("cp932")
    file = SimpleUploadedFile("請求.csv", bad, content_type="text/csv")
    admin_client.post(
        f"/b/{biller.slug}/console/imports/", {"file": file, "publish": "on"}, HTTP_ACCEPT_LANGUAGE="ja"
    )
    job = ImportJob.objects.get(biller=biller)
    assert job.language == "ja"
    assert job.errors == [
        {
            "row": 3,
            "column": "tax_category",
            "message": "不明な税区分 '5' です。10、8、exempt（非課税）のいずれかにしてください",
        }
    ]
