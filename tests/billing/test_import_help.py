"""The CSV import guide served by the console (/console/help/csv-import/): the columns named as the import's
pages name them, formats, limits, and the sample file (docs/samples/invoices-sample.csv) to download;
members only, each tenant its own."""

from __future__ import annotations

import codecs
import csv
import io
import re
from pathlib import Path

import pytest
from django.conf import settings as conf
from django.template.defaultfilters import filesizeformat
from django.test import Client
from django.utils import translation

from billing import console_imports, imports
from billing.models import Biller, Membership
from tests.factories import make_biller, make_member

pytestmark = pytest.mark.django_db

SAMPLE = Path(__file__).resolve().parents[2] / "docs" / "samples" / "invoices-sample.csv"


def guide(biller: Biller) -> str:
    return f"/b/{biller.slug}/console/help/csv-import/"


def test_the_guide_is_a_console_page_in_japanese(admin_client: Client, biller: Biller) -> None:
    response = admin_client.get(guide(biller), HTTP_ACCEPT_LANGUAGE="ja")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="ja">' in html
    rows = re.findall(
        r'<tr><th scope="row">([^<]+)</th><td><code>([^<]+)</code></td><td><code>([^<]+)</code>', html
    )
    assert rows == [(spellings[0], spellings[0], spellings[1]) for spellings in imports.COLUMNS.values()]
    assert f'href="/b/{biller.slug}/console/help/csv-import/invoices-sample.csv"' in html
    assert "docs/csv-import.md" not in html and "<script>" not in html and " style=" not in html
    assert '<span class="status status-published import-ready">' in html  # the badges, as the pages draw them


def test_the_guide_names_the_columns_in_english_under_english(admin_client: Client, biller: Biller) -> None:
    html = admin_client.get(guide(biller), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    labels = re.findall(r'<tr><th scope="row">([^<]+)</th>', html)
    assert labels[:3] == ["Invoice number", "External ID", "Customer code"]
    assert "請求番号" in html  # the header to write in the file is still shown
    with translation.override("en"):
        assert f"up to {filesizeformat(conf.IMPORT_MAX_BYTES)}" in html  # the size limit


def test_an_operator_may_read_the_guide(client: Client, biller: Biller) -> None:
    client.force_login(make_member(biller, role=Membership.Role.OPERATOR))
    assert client.get(guide(biller)).status_code == 200


def test_the_guide_is_not_for_strangers(client: Client, biller: Biller) -> None:
    anonymous = client.get(guide(biller))
    assert anonymous.status_code == 302 and "login" in anonymous["Location"]
    assert client.get(guide(biller) + "invoices-sample.csv").status_code == 302
    other = make_biller()
    client.force_login(make_member(other))
    # a member of another tenant: 404, as for every console page of a biller one is not a member of
    assert client.get(guide(biller)).status_code == 404
    assert client.get(guide(biller) + "invoices-sample.csv").status_code == 404
    assert client.get(guide(other)).status_code == 200


def test_the_sample_downloads_as_the_product_ships_it(admin_client: Client, biller: Biller) -> None:
    response = admin_client.get(guide(biller) + "invoices-sample.csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="invoices-sample.csv"'
    body = response.content
    assert body.startswith(codecs.BOM_UTF8)  # so that Excel reads it as UTF-8
    shipped = SAMPLE.read_bytes()
    assert body.removeprefix(codecs.BOM_UTF8) == shipped.removeprefix(codecs.BOM_UTF8)
    header = next(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    aliases = {spelling for spellings in imports.COLUMNS.values() for spelling in spellings}
    assert header and set(header) <= aliases


def test_a_missing_sample_is_a_404(
    admin_client: Client, biller: Biller, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(console_imports, "sample_path", lambda: tmp_path / "gone.csv")
    assert admin_client.get(guide(biller) + "invoices-sample.csv").status_code == 404


def test_the_import_pages_link_to_the_guide(admin_client: Client, biller: Biller) -> None:
    html = admin_client.get(f"/b/{biller.slug}/console/imports/").content.decode()
    assert f'href="{guide(biller)}"' in html
    assert "docs/csv-import.md" not in html
