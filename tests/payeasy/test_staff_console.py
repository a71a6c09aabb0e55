"""The iDC staff console: onboarding, banks, status, invitations, audit trail."""

import re

import pyotp
import pytest
from django.conf import settings
from django.test import Client

from billing.models import AuditEntry, Biller, ConsoleTwoFactor, Membership
from payeasy.models import ContractedBank
from tests.factories import biller_data, make_biller, make_member

pytestmark = pytest.mark.django_db


def form_data(**overrides: str) -> dict[str, str]:
    data = {k: str(v) for k, v in biller_data().items()}
    data.update(
        {
            "contracts-TOTAL_FORMS": "3",
            "contracts-INITIAL_FORMS": "0",
            "contracts-MIN_NUM_FORMS": "0",
            "contracts-MAX_NUM_FORMS": "50",
            "contracts-0-bank_code": "0001",
            "contracts-0-channels": ["02", "05"],
            "contracts-0-valid_from": "2026-04-01",
            "contracts-1-bank_code": "0009",
            "contracts-1-channels": ["01"],
            "contracts-1-valid_from": "2026-04-01",
            "contracts-1-valid_to": "2027-03-31",
        }
    )
    data.update(overrides)
    return data


def test_non_staff_cannot_open_the_staff_console(client: Client, biller: Biller) -> None:
    assert client.get("/staff/").status_code == 302
    client.force_login(make_member(biller))
    assert client.get("/staff/").status_code == 403
    assert client.post("/staff/billers/new/", form_data()).status_code == 403
    assert Biller.objects.count() == 1


def test_onboard_a_biller_with_two_banks(staff_client: Client) -> None:
    response = staff_client.post(
        "/staff/billers/new/", form_data(name_kana="てすとでんき", legal_name="テスト電気株式会社")
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    biller = Biller.objects.get(legal_name="テスト電気株式会社")
    assert biller.name_kana == "ﾃｽﾄﾃﾞﾝｷ" and biller.status == "onboarding"
    banks = {c.bank_code: c for c in ContractedBank.objects.filter(biller=biller)}
    assert set(banks) == {"0001", "0009"}
    assert banks["0001"].channels == ["02", "05"] and banks["0009"].valid_to.isoformat() == "2027-03-31"
    detail = staff_client.get(response["Location"])
    assert "みずほ" in detail.content.decode() and "三井住友" in detail.content.decode()


@pytest.mark.parametrize(
    ("overrides", "field", "text"),
    [
        ({"payee_number": "123"}, "payee_number", "exactly 5 digits"),
        ({"registration_number": "T1234567890123"}, "registration_number", "check digit"),
        ({"name_kana": "東都電力"}, "name_kana", "全銀"),
        ({"contracts-1-bank_code": "0002"}, "contracts-1-bank_code", "bank master"),
        ({"contracts-1-bank_code": "0001", "contracts-1-valid_to": ""}, "contracts-1-valid_from", "overlaps"),
        ({"contracts-0-valid_to": "2026-01-01"}, "contracts-0-valid_to", "before its start"),
    ],
)
def test_bad_onboarding_input_names_the_field_and_changes_nothing(
    staff_client: Client, overrides: dict, field: str, text: str
) -> None:
    response = staff_client.post("/staff/billers/new/", form_data(**overrides))
    assert response.status_code == 400
    html = response.content.decode()
    assert text in html
    assert f'href="#id_{field}"' in html  # the error summary links to the field
    assert not Biller.objects.exists() and not ContractedBank.objects.exists()


def test_duplicate_biller_code_is_refused(staff_client: Client) -> None:
    existing = make_biller()
    response = staff_client.post(
        "/staff/billers/new/", form_data(payee_number=existing.payee_number, biller_code=existing.biller_code)
    )
    assert response.status_code == 400
    assert "Another biller already has this biller code." in response.content.decode()
    assert Biller.objects.count() == 1


def test_list_search_and_status_filter(staff_client: Client) -> None:
    a = make_biller(legal_name="北海ガス株式会社", name_kana="ﾎﾂｶｲｶﾞｽ(ｶ")
    b = make_biller(legal_name="南国水道株式会社", status="suspended")
    page = staff_client.get("/staff/", {"q": "北海"}).content.decode()
    assert a.legal_name in page and b.legal_name not in page
    page = staff_client.get("/staff/", {"q": "ほっかい"}).content.decode()  # hiragana finds the kana name
    assert a.legal_name in page
    page = staff_client.get("/staff/", {"status": "suspended"}).content.decode()
    assert b.legal_name in page and a.legal_name not in page


def test_suspend_and_reactivate(staff_client: Client, biller: Biller) -> None:
    staff_client.post(
        f"/staff/billers/{biller.pk}/status/", {"status": "suspended", "reason": "contract ended"}
    )
    biller.refresh_from_db()
    assert biller.status == "suspended"
    staff_client.post(f"/staff/billers/{biller.pk}/status/", {"status": "active"})
    biller.refresh_from_db()
    assert biller.status == "active"
    assert list(AuditEntry.objects.filter(biller=biller).values_list("action", flat=True)) == [
        "biller.reactivate",
        "biller.suspend",
    ]


def test_edit_contracted_banks(staff_client: Client, biller: Biller) -> None:
    from tests.factories import make_contract

    row = make_contract(biller, "0001", channels=("02",))
    data = {
        "contracts-TOTAL_FORMS": "2",
        "contracts-INITIAL_FORMS": "1",
        "contracts-MIN_NUM_FORMS": "0",
        "contracts-MAX_NUM_FORMS": "50",
        "contracts-0-contract_id": str(row.pk),
        "contracts-0-bank_code": "0001",
        "contracts-0-channels": ["02", "03"],
        "contracts-0-valid_from": "2026-04-01",
        "contracts-0-valid_to": "2026-12-31",
        "contracts-1-bank_code": "0001",
        "contracts-1-channels": ["02"],
        "contracts-1-valid_from": "2027-01-01",
    }
    response = staff_client.post(f"/staff/billers/{biller.pk}/banks/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    rows = list(ContractedBank.objects.filter(biller=biller).order_by("valid_from"))
    assert [(r.channels, str(r.valid_to)) for r in rows] == [(["02", "03"], "2026-12-31"), (["02"], "None")]
    # an overlapping edit is refused and nothing changes
    data["contracts-0-valid_to"] = ""
    data["contracts-1-bank_code"] = "0005"
    data["contracts-INITIAL_FORMS"] = "2"
    data["contracts-TOTAL_FORMS"] = "2"
    data["contracts-1-contract_id"] = str(rows[1].pk)
    data["contracts-1-bank_code"] = "0001"
    response = staff_client.post(f"/staff/billers/{biller.pk}/banks/", data)
    assert response.status_code == 400 and "overlaps" in response.content.decode()
    rows[0].refresh_from_db()
    assert str(rows[0].valid_to) == "2026-12-31"


def test_invite_the_first_admin_and_follow_the_link(
    staff_client: Client,
    mailoutbox,
    django_capture_on_commit_callbacks,  # type: ignore[no-untyped-def]
) -> None:
    biller = make_biller(status="onboarding")
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            f"/staff/billers/{biller.pk}/invite/", {"email": "boss@newco.jp", "role": "admin"}
        )
    assert response.status_code == 302
    link = re.search(r"http://\S+/accounts/invitations/\S+/", mailoutbox[0].body).group(0)
    path = link.split(settings.PORTAL_BASE_URL, 1)[1]
    visitor = Client()
    assert visitor.get(path).status_code == 200
    response = visitor.post(path, {"name": "新社長", "password": "a-long-unique-pass"})
    # an administrator sets up two-step verification before the console opens
    assert response.status_code == 302 and response["Location"] == "/accounts/two-step/setup/"
    assert visitor.get(response["Location"]).status_code == 200
    secret = ConsoleTwoFactor.objects.get(user__email="boss@newco.jp").secret
    codes = visitor.post("/accounts/two-step/setup/", {"code": pyotp.TOTP(secret).now()})
    assert codes.status_code == 200 and f'href="/b/{biller.slug}/console/"' in codes.content.decode()
    console = visitor.get(f"/b/{biller.slug}/console/")
    assert console.status_code == 200 and biller.legal_name in console.content.decode()
    assert Membership.objects.get(biller=biller).user.email == "boss@newco.jp"
    assert visitor.get(path).status_code == 404  # single use


def test_audit_trail_filters(staff_client: Client, biller: Biller) -> None:
    staff_client.post(f"/staff/billers/{biller.pk}/status/", {"status": "suspended"})
    page = staff_client.get("/staff/audit/", {"biller": biller.biller_code}).content.decode()
    assert "<td>Biller suspended</td>" in page
    page = staff_client.get("/staff/audit/", {"biller": "99999999"}).content.decode()
    assert "<td>Biller suspended</td>" not in page
