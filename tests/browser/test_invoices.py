"""The invoices issue's "done means", through the browser.

A tenant admin logs in, creates and publishes an invoice with a 10 % and an 8 %
line (totals per rate and the payment numbers on the page), downloads its PDF,
imports a Shift_JIS CSV (first with one bad row, then fixed, then the same file
again), creates an API key and uses it with an Idempotency-Key. A second test
checks that the invoice list follows a Japanese browser.
Set SAVE_SCREENSHOTS=1 to refresh docs/screenshots/.
"""

from __future__ import annotations

import datetime
import json
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone, translation
from playwright.sync_api import expect

from billing.models import Biller, ImportJob, Invoice, Membership
from tests import factories
from tests.browser.conftest import pass_second_factor

ADMIN_EMAIL = "keiri@test-denryoku.jp"
ADMIN_PASSWORD = "correct horse battery"
ADMIN_NAME = "経理 花子"

UI_NUMBER = "INV-2026-0001"
CSV_NUMBERS = ["CSV-0001", "CSV-0002", "CSV-0003"]
CSV_HEADER = "請求番号,外部ID,顧客コード,請求日,支払期限,料金名,品目,数量,単価,税区分"
BAD_ROW = 4  # the header is row 1; CSV-0001 has rows 2 and 3
IMPORT_BUTTON = re.compile(r"^Import \d+ invoices?$")
JA_INVOICES = "請求書"  # msgstr of "Invoices" in config/locale/ja/LC_MESSAGES/django.po


# --- helpers -------------------------------------------------------------------------------------------


def make_admin(biller: Biller, email: str = ADMIN_EMAIL) -> None:
    user = factories.make_user(email, password=ADMIN_PASSWORD, name=ADMIN_NAME)
    Membership.objects.create(biller=biller, user=user, role=Membership.Role.ADMIN)


def log_in(page: Any, base_url: str, *, email: str, password: str, labels: dict[str, str]) -> None:
    page.goto(base_url + "/accounts/login/")
    page.get_by_label(labels["E-mail"]).fill(email)
    page.get_by_label(labels["Password"]).fill(password)
    page.get_by_role("button", name=labels["Log in"]).click()
    pass_second_factor(page, email)


def nav_link(page: Any, name: str) -> Any:
    return page.get_by_role("banner").get_by_role("navigation").get_by_role("link", name=name, exact=True)


def fact(page: Any, term: str) -> Any:
    """The <dd> of the <dt> named ``term`` in a facts list."""
    dt = page.locator("dl.facts > dt").filter(has_text=re.compile(rf"^{re.escape(term)}$"))
    return dt.locator("xpath=following-sibling::dd[1]")


def invoice_csv(issue: datetime.date, due: datetime.date, *, tax_category_of_second: str = "8") -> bytes:
    """Three invoices as Excel writes them (cp932, CRLF); the second one's tax category is a parameter."""
    head = f"{issue:%Y/%m/%d},{due:%Y/%m/%d},12月分電気料金"
    rows = [
        CSV_HEADER,
        f"CSV-0001,cis-1,D-1,{head},基本料金,1,1200,10",
        f"CSV-0001,cis-1,D-1,{head},電力量料金 11/1～11/30,300,31,10",  # ～ exists in cp932, not Shift_JIS
        f"CSV-0002,cis-2,D-2,{head},定期購読 新聞,1,4400,{tax_category_of_second}",
        f"CSV-0003,cis-3,D-1,{head},基本料金,1,1500,10",
    ]
    return ("\r\n".join(rows) + "\r\n").encode("cp932")


def upload_csv(page: Any, path: Path) -> None:
    nav_link(page, "CSV import").click()
    expect(page.get_by_role("heading", name="Import invoices from CSV", level=1)).to_be_visible()
    page.get_by_label("CSV file").set_input_files(path)
    publish = page.get_by_label("Publish the invoices (assign payment numbers, e-mail customers)")
    expect(publish).to_be_checked()  # the default
    page.get_by_role("button", name="Upload and check").click()
    # the preview runs inside the upload request (eager Celery after commit); the page would refresh anyway
    expect(page.get_by_role("heading", level=1)).to_contain_text(path.name)
    expect(page.get_by_role("progressbar")).to_have_count(0)


def api_post(url: str, token: str, body: dict[str, Any], idempotency_key: str) -> tuple[int, Any, bytes]:
    """POST JSON from the test process: (status, headers, raw body), error responses included."""
    request = urllib.request.Request(  # noqa: S310 - the live server's http:// URL
        url,
        data=json.dumps(body, ensure_ascii=False).encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Idempotency-Key": idempotency_key,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers, exc.read()


# --- the issue's "done means" --------------------------------------------------------------------------


@pytest.mark.parametrize("browser_locale", ["en-US"])
def test_invoices_console_import_and_api(
    page: Any, live_server: Any, mailoutbox: list, screenshot: Any, tmp_path: Path
) -> None:
    base = live_server.url
    biller = factories.make_biller(legal_name="テスト電力株式会社")
    make_admin(biller)
    d1 = factories.make_customer(biller, code="D-1", name="田中 一郎", email="ichiro@example.jp")
    d2 = factories.make_customer(biller, code="D-2", name="鈴木 花子", email="hanako@example.jp")
    today = timezone.localdate()
    due = today + datetime.timedelta(days=30)
    console = f"{base}/b/{biller.slug}/console/"

    # -- log in and open the console --------------------------------------------------------------------
    log_in(
        page,
        base,
        email=ADMIN_EMAIL,
        password=ADMIN_PASSWORD,
        labels={"E-mail": "E-mail", "Password": "Password", "Log in": "Log in"},
    )
    expect(page).to_have_url(console)
    page.goto(console)
    expect(page.get_by_role("heading", level=1)).to_have_text(biller.legal_name)

    # -- create an invoice with a 10 % and an 8 % line, and publish it ------------------------------------
    nav_link(page, "Invoices").click()
    expect(page.get_by_role("heading", name="Invoices", level=1)).to_be_visible()
    expect(nav_link(page, "Invoices")).to_have_attribute("aria-current", "page")
    page.get_by_role("main").get_by_role("link", name="New invoice").click()
    expect(page.get_by_role("heading", name="New invoice", level=1)).to_be_visible()
    page.get_by_label("Customer code").fill("D-1")
    page.get_by_label("Invoice number").fill(UI_NUMBER)
    expect(page.get_by_label("Issue date")).to_have_value(today.isoformat())  # today by default
    page.get_by_label("Due date").fill(due.isoformat())
    page.get_by_label("Description shown to payers (料金名)").fill("11月分電気料金")
    line1 = page.get_by_role("group", name="Line 1", exact=True)
    line1.get_by_label("Item").fill("電力量料金 300kWh")
    line1.get_by_label("Quantity").fill("300")
    line1.get_by_label("Unit price (yen)").fill("31")
    expect(line1.get_by_label("Tax rate")).to_have_value("10")
    line2 = page.get_by_role("group", name="Line 2", exact=True)
    line2.get_by_label("Item").fill("定期購読 新聞")
    line2.get_by_label("Unit price (yen)").fill("4,400")
    line2.get_by_label("Tax rate").select_option(label="8% (reduced rate)")
    page.get_by_role("button", name="Create and publish").click()

    expect(page.get_by_role("status")).to_contain_text(f"Invoice {UI_NUMBER} was created and published.")
    invoice = Invoice.objects.get(biller=biller, number=UI_NUMBER)  # only now: the POST has been answered
    expect(page).to_have_url(f"{console}invoices/{invoice.pk}/")
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_contain_text(f"Invoice {UI_NUMBER}")
    expect(heading).to_contain_text("Published")
    assert (invoice.status, invoice.customer_id) == (Invoice.Status.PUBLISHED, d1.pk)
    assert (invoice.subtotal_10, invoice.tax_10, invoice.subtotal_8, invoice.tax_8) == (9300, 930, 4400, 352)
    assert invoice.total == 14982

    totals = page.get_by_role("table", name="Totals per tax rate")

    def cells_of(rate: str) -> Any:
        row = totals.get_by_role("row").filter(has=page.get_by_role("rowheader", name=rate, exact=True))
        return row.locator("th, td")

    expect(cells_of("10%")).to_have_text(["10%", "9,300円", "930円"])
    expect(cells_of("8%※")).to_have_text(["8%※", "4,400円", "352円"])
    expect(cells_of("Total")).to_have_text(["Total", "14,982円"])
    expect(page.get_by_text("※ Reduced tax rate (軽減税率対象).")).to_be_visible()

    expect(fact(page, "Payee number (収納機関番号)")).to_have_text(biller.payee_number)
    customer_number = fact(page, "Customer number (お客様番号)").inner_text().strip()
    confirmation_number = fact(page, "Confirmation number (確認番号)").inner_text().strip()
    assert re.fullmatch(r"\d{16}", customer_number), customer_number
    assert re.fullmatch(r"\d{6}", confirmation_number), confirmation_number
    assert (customer_number, confirmation_number) == (invoice.customer_number, invoice.confirmation_number)
    # the customer was told once, with the same numbers
    assert [m.to for m in mailoutbox] == [[d1.email]]
    assert customer_number in mailoutbox[0].body and confirmation_number in mailoutbox[0].body
    screenshot(page, "console-invoice-detail")

    # -- the PDF ----------------------------------------------------------------------------------------
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download PDF").click()
    download = download_info.value
    assert download.failure() is None
    assert download.suggested_filename == f"invoice-{UI_NUMBER}.pdf"
    pdf = Path(download.path()).read_bytes()
    assert pdf.startswith(b"%PDF"), pdf[:20]
    assert len(pdf) > 10 * 1024, len(pdf)

    # -- CSV import: a cp932 file with one bad row is previewed, and refused -------------------------------
    csv_path = tmp_path / "請求データ_12月.csv"
    csv_path.write_bytes(invoice_csv(today, due, tax_category_of_second="5"))
    upload_csv(page, csv_path)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Errors found")
    expect(page.get_by_role("main")).to_contain_text("Encoding: cp932")
    expect(page.get_by_role("status")).to_contain_text("1 problem: nothing was written.")
    expect(fact(page, "Errors")).to_have_text("1")
    problems = page.get_by_role("table").filter(has=page.get_by_role("columnheader", name="Problem"))
    expect(problems.get_by_role("row")).to_have_count(2)  # the header and the one problem
    expect(problems.get_by_role("row").nth(1).get_by_role("cell")).to_have_text(
        [str(BAD_ROW), "Tax category", re.compile(r"unknown tax category '5'")]
    )
    expect(page.get_by_role("button", name=IMPORT_BUTTON)).to_have_count(0)
    expect(page.get_by_role("link", name="Download the list (CSV)")).to_be_visible()
    assert not Invoice.objects.filter(biller=biller, number__in=CSV_NUMBERS).exists()
    failed = ImportJob.objects.get(biller=biller)
    assert (failed.mode, failed.status, failed.encoding) == ("preview", "failed", "cp932")
    screenshot(page, "console-import-preview-errors")

    # -- the fixed file: preview, import, result ----------------------------------------------------------
    csv_path.write_bytes(invoice_csv(today, due))
    upload_csv(page, csv_path)
    expect(page.get_by_role("heading", level=1)).to_contain_text(
        "Checked: ready to import"
    )  # a preview is not "done"
    expect(page.get_by_role("status")).to_contain_text("3 new invoices can be imported.")
    expect(fact(page, "New invoices")).to_have_text("3")
    expect(fact(page, "Total of new invoices")).to_have_text("17,952円")
    expect(fact(page, "Errors")).to_have_text("0")
    # a preview writes nothing
    assert not Invoice.objects.filter(biller=biller, number__in=CSV_NUMBERS).exists()
    page.get_by_role("button", name="Import 3 invoices").click()

    expect(page.get_by_role("main")).to_contain_text("Import: all or nothing.")
    expect(page.get_by_role("status")).to_contain_text("Imported 3 invoices.")
    expect(fact(page, "New invoices")).to_have_text("3")
    expect(page.get_by_role("link", name="See the invoices")).to_be_visible()
    imported = Invoice.objects.filter(biller=biller, number__in=CSV_NUMBERS).order_by("number")
    assert [(i.number, i.external_id, i.status, i.total) for i in imported] == [
        ("CSV-0001", "cis-1", "published", 11550),
        ("CSV-0002", "cis-2", "published", 4752),
        ("CSV-0003", "cis-3", "published", 1650),
    ]
    assert [i.customer_id for i in imported] == [d1.pk, d2.pk, d1.pk]
    assert imported[0].lines[1]["description"] == "電力量料金 11/1～11/30"  # read as cp932
    assert all(re.fullmatch(r"\d{16}", i.customer_number or "") for i in imported)
    screenshot(page, "console-import-result")

    # -- the same file again: nothing to import -----------------------------------------------------------
    upload_csv(page, csv_path)
    expect(page.get_by_role("status")).to_contain_text(
        "Nothing to import: all 3 invoices in the file were already imported."
    )
    expect(fact(page, "New invoices")).to_have_text("0")
    expect(fact(page, "Already imported (unchanged)")).to_have_text("3")
    expect(page.get_by_role("button", name=IMPORT_BUTTON)).to_have_count(0)
    assert Invoice.objects.filter(biller=biller, number__in=CSV_NUMBERS).count() == 3
    assert Invoice.objects.filter(biller=biller).count() == 4
    assert sorted(ImportJob.objects.filter(biller=biller).values_list("mode", "status")) == [
        ("import", "succeeded"),
        ("preview", "failed"),
        ("preview", "nothing"),
        ("preview", "succeeded"),
    ]
    # one e-mail per published invoice: the console's, then the three imported
    assert sorted(m.to[0] for m in mailoutbox) == sorted([d1.email, d1.email, d1.email, d2.email])

    # -- an API key, then the API with an Idempotency-Key ---------------------------------------------------
    nav_link(page, "API keys").click()
    page.get_by_label("Key name").fill("基幹システム（本番）")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_role("alert")).to_contain_text("It is shown only once")
    token = page.get_by_label("API key", exact=True).input_value()
    assert re.fullmatch(r"pe_[0-9a-f]+_[A-Za-z0-9_\-]+", token), token

    url = f"{base}/b/{biller.slug}/api/v1/invoices/"
    body = {
        "customer": "D-2",
        "number": "API-0001",
        "external_id": "order-1",
        "issue_date": today.isoformat(),
        "due_date": due.isoformat(),
        "description": "12月分電気料金",
        "lines": [{"description": "基本料金", "quantity": 1, "unit_price": 1200, "tax_category": "10"}],
        "publish": True,
    }
    status1, headers1, raw1 = api_post(url, token, body, "order-1")
    status2, headers2, raw2 = api_post(url, token, body, "order-1")
    assert (status1, status2) == (201, 201), (raw1, raw2)
    body1, body2 = json.loads(raw1), json.loads(raw2)
    assert body1 == body2
    assert raw1 == raw2  # byte for byte
    assert headers1.get("Idempotent-Replayed") is None
    assert headers2.get("Idempotent-Replayed") == "true"
    created = Invoice.objects.get(biller=biller, external_id="order-1")
    assert Invoice.objects.filter(biller=biller, number="API-0001").count() == 1
    assert body1["id"] == created.pk and body1["totals"]["total"] == 1320
    assert body1["payment_numbers"]["customer_number"] == created.customer_number

    status3, _headers3, raw3 = api_post(url, token, {**body, "number": "API-0002"}, "order-1")
    assert status3 == 422, raw3
    body3 = json.loads(raw3)
    assert body3["error"]["code"] == "idempotency_key_reused"
    assert not Invoice.objects.filter(biller=biller, number="API-0002").exists()
    assert Invoice.objects.filter(biller=biller).count() == 5
    assert len(mailoutbox) == 5  # the API's invoice was announced once, not once per request

    # -- the list shows all five --------------------------------------------------------------------------
    nav_link(page, "Invoices").click()
    listing = page.get_by_role("table").filter(has=page.get_by_role("columnheader", name="Invoice number"))
    expect(listing.locator("caption")).to_have_text("Showing 5 invoices (first page)")
    for number in [UI_NUMBER, *CSV_NUMBERS, "API-0001"]:
        expect(listing.get_by_role("link", name=number, exact=True)).to_be_visible()
    expect(listing.get_by_role("row").filter(has_text="API-0001")).to_contain_text("D-2 鈴木 花子")
    screenshot(page, "console-invoice-list")


def test_invoice_list_follows_a_japanese_browser(page: Any, live_server: Any) -> None:
    """The default browser locale is ja-JP: the console answers in Japanese."""
    biller = factories.make_biller()
    make_admin(biller, email="ja-admin@test-denryoku.jp")
    with translation.override("ja"):
        # the login form is not under test here: its labels are whatever the ja catalogue says
        labels = {msg: translation.gettext(msg) for msg in ("E-mail", "Password", "Log in")}
    log_in(page, live_server.url, email="ja-admin@test-denryoku.jp", password=ADMIN_PASSWORD, labels=labels)
    expect(page).to_have_url(f"{live_server.url}/b/{biller.slug}/console/")

    page.goto(f"{live_server.url}/b/{biller.slug}/console/invoices/")
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    expect(nav_link(page, JA_INVOICES)).to_have_attribute("aria-current", "page")
    expect(page.get_by_role("heading", level=1)).to_have_text(JA_INVOICES)
