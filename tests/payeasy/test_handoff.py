"""The 情報リンク hand-off: the envelope (AES-256-GCM, key ids, rotation, expiry, replay), the bank
chooser, the hand-off page, and the staff console for the banks' endpoints and keys."""

from __future__ import annotations

import datetime
import html
import itertools
import json
import re
from typing import Any

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from billing.models import AuditEntry, Biller, Invoice
from billing.tenancy import tenant_reverse
from payeasy import handoff, paying, selectors
from payeasy.models import HandoffEndpoint, HandoffKey, HandoffNonce, Notice
from payeasy.services import handoff as services
from tests.factories import make_contract, make_customer, make_member, make_portal_account, make_user
from tests.payeasy.line_helpers import published_invoice

pytestmark = pytest.mark.django_db

KEY = bytes(range(32))
_keys = itertools.count(1)


def sample_payload(**overrides: Any) -> dict[str, Any]:
    now = int(timezone.now().timestamp())
    data = {
        "payee_number": "58191",
        "biller_code": "58191001",
        "customer_number": "12345678901234",
        "confirmation_number": "123456",
        "amount": 5500,
        "due_date": "2026-12-25",
        "biller_name": "東都電力",
        "biller_name_kana": "ﾄｳﾄﾃﾞﾝﾘﾖｸ(ｶ",
        "description": "11月分電気料金",
        "return_url": "https://portal.example/b/toto/my/invoices/1/?returned=1",
        "issued_at": now,
        "expires_at": now + 1800,
        "nonce": handoff.b64e(bytes(16)),
    }
    data.update(overrides)
    return data


def bank_with_key(bank_code: str = "0001", entry_url: str = "https://bank.example/paylink") -> HandoffKey:
    endpoint = HandoffEndpoint.objects.filter(
        bank_code=bank_code
    ).first() or services.handoff_endpoint_create(actor=None, bank_code=bank_code, entry_url=entry_url)
    key, _material = services.handoff_key_create(actor=None, endpoint=endpoint)
    return key


def flip(envelope: str, part: int, position: int = 5) -> str:
    """The envelope with one character of part ``part`` changed (still valid base64url)."""
    pieces = envelope.split(".")
    text = pieces[part]
    pieces[part] = text[:position] + ("A" if text[position] != "A" else "B") + text[position + 1 :]
    return ".".join(pieces)


@pytest.fixture
def payable(biller: Biller) -> Invoice:
    make_contract(biller, "0001", channels=("02", "05"))
    invoice = published_invoice(biller, price=5000)
    return Invoice.objects.select_related("biller").get(pk=invoice.pk)


# --- the envelope, without the database ---------------------------------------------------------------


def test_seal_and_unseal_round_trip_with_documented_shape() -> None:
    data = sample_payload()
    envelope = handoff.seal(data, key=KEY, kid="0001-20261202-abcdef", bank_code="0001")
    version, kid, iv, ciphertext = envelope.split(".")
    assert (version, kid) == ("v1", "0001-20261202-abcdef")
    assert (
        len(handoff.b64d(iv)) == 12
        and len(handoff.b64d(ciphertext))
        == len(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()) + 16
    )
    assert re.fullmatch(r"[A-Za-z0-9_.\-]+", envelope)  # ASCII, form- and URL-safe
    assert handoff.unseal(envelope, key=KEY, bank_code="0001").as_dict() == data
    # a fresh IV every time: the same payload never gives the same envelope
    assert handoff.seal(data, key=KEY, kid="k1", bank_code="0001") != handoff.seal(
        data, key=KEY, kid="k1", bank_code="0001"
    )


@pytest.mark.parametrize("part", [2, 3], ids=["iv", "ciphertext"])
def test_tampered_bytes_are_refused(part: int) -> None:
    envelope = handoff.seal(sample_payload(), key=KEY, kid="k1", bank_code="0001")
    with pytest.raises(handoff.EnvelopeTampered):
        handoff.unseal(flip(envelope, part), key=KEY, bank_code="0001")


def test_the_kid_and_bank_code_are_authenticated() -> None:
    envelope = handoff.seal(sample_payload(), key=KEY, kid="k1", bank_code="0001")
    with pytest.raises(handoff.EnvelopeTampered):  # another bank (AAD)
        handoff.unseal(envelope, key=KEY, bank_code="0005")
    with pytest.raises(handoff.EnvelopeTampered):  # the kid changed under the same key (AAD)
        handoff.unseal(envelope.replace(".k1.", ".k2."), key=KEY, bank_code="0001")
    with pytest.raises(handoff.EnvelopeTampered):  # another key
        handoff.unseal(envelope, key=bytes(32), bank_code="0001")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "v1.k1",
        "v2.k1.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v1.k 1.AAAA.AAAA",
        "v1.k1.!!!.AAAA",
        "x" * 9000,
    ],
)
def test_malformed_envelopes_are_refused(text: str) -> None:
    with pytest.raises(handoff.EnvelopeMalformed):
        handoff.unseal(text, key=KEY, bank_code="0001")


def test_a_version_other_than_v1_is_named() -> None:
    envelope = handoff.seal(sample_payload(), key=KEY, kid="k1", bank_code="0001")
    with pytest.raises(handoff.EnvelopeMalformed, match="version v2"):
        handoff.unseal("v2" + envelope[2:], key=KEY, bank_code="0001")


def test_payload_fields_are_checked_even_when_authentic() -> None:
    bad = sample_payload(amount="5500")
    with pytest.raises(handoff.EnvelopeMalformed, match="amount"):
        handoff.unseal(handoff.seal(bad, key=KEY, kid="k1", bank_code="0001"), key=KEY, bank_code="0001")
    missing = sample_payload()
    del missing["nonce"]
    with pytest.raises(handoff.EnvelopeMalformed, match="nonce"):
        handoff.unseal(handoff.seal(missing, key=KEY, kid="k1", bank_code="0001"), key=KEY, bank_code="0001")
    extra = sample_payload(future_field=1)  # later versions may add fields
    assert handoff.unseal(handoff.seal(extra, key=KEY, kid="k1", bank_code="0001"), key=KEY, bank_code="0001")


def test_error_classes_are_distinct() -> None:
    classes = [
        handoff.EnvelopeMalformed,
        handoff.EnvelopeTampered,
        handoff.UnknownKey,
        handoff.KeyRetired,
        handoff.EnvelopeExpired,
        handoff.EnvelopeReplayed,
    ]
    assert len({c.code for c in classes}) == len(classes)
    assert len({str(c.default_message) for c in classes}) == len(classes)
    assert all(issubclass(c, handoff.HandoffError) for c in classes)


# --- keys at rest -------------------------------------------------------------------------------------


def test_keys_are_random_and_stored_wrapped() -> None:
    endpoint = services.handoff_endpoint_create(
        actor=None, bank_code="0001", entry_url="https://bank.example/in"
    )
    row, material = services.handoff_key_create(actor=None, endpoint=endpoint)
    _row2, material2 = services.handoff_key_create(actor=None, endpoint=endpoint)
    assert len(material) == 32 and material != material2
    stored = HandoffKey.objects.get(pk=row.pk).wrapped_key
    assert handoff.b64e(material) not in stored and material.hex() not in stored
    assert handoff.key_unwrap(stored, row.kid) == material
    with pytest.raises(handoff.KeyUnreadable):  # bound to its kid
        handoff.key_unwrap(stored, "another-kid")
    with override_settings(SECRET_KEY="another-secret-key-" + "x" * 40), pytest.raises(handoff.KeyUnreadable):
        handoff.key_unwrap(stored, row.kid)
    from django.conf import settings

    with override_settings(
        SECRET_KEY="new-secret-key-" + "y" * 40, SECRET_KEY_FALLBACKS=[settings.SECRET_KEY]
    ):
        assert handoff.key_unwrap(stored, row.kid) == material  # after a secret-key rotation
    kek = "ab" * 32
    with override_settings(PAYEASY_HANDOFF_KEK=kek):
        wrapped = handoff.key_wrap(material, "k9")
        assert handoff.key_unwrap(wrapped, "k9") == material
    with pytest.raises(handoff.KeyUnreadable):
        handoff.key_unwrap(wrapped, "k9")


# --- sealing and opening with the database ------------------------------------------------------------


def test_round_trip_through_the_database(payable: Invoice) -> None:
    key = bank_with_key("0001")
    sealed = handoff.handoff_seal(invoice=payable, bank_code="0001", return_url="https://portal.example/r")
    assert sealed.kid == key.kid and sealed.envelope.split(".")[1] == key.kid
    assert not HandoffNonce.objects.exists()  # sealing writes nothing
    payload = handoff.handoff_open(sealed.envelope, bank_code="0001")
    biller = payable.biller
    assert payload.as_dict() == {
        "payee_number": biller.payee_number,
        "biller_code": biller.biller_code,
        "customer_number": payable.customer_number,
        "confirmation_number": payable.confirmation_number,
        "amount": 5500,
        "due_date": "2026-12-31",
        "biller_name": biller.short_name,
        "biller_name_kana": biller.name_kana,
        "description": "11月分電気料金",
        "return_url": "https://portal.example/r",
        "issued_at": sealed.payload.issued_at,
        "expires_at": sealed.payload.issued_at + 1800,
        "nonce": sealed.payload.nonce,
    }
    assert len(handoff.b64d(payload.nonce)) == 16
    assert HandoffNonce.objects.get().nonce == payload.nonce


def test_unknown_kid_is_refused(payable: Invoice) -> None:
    bank_with_key("0001")
    sealed = handoff.handoff_seal(invoice=payable, bank_code="0001", return_url="https://p.example/")
    with pytest.raises(handoff.UnknownKey):
        handoff.handoff_open(sealed.envelope.replace(sealed.kid, "0001-20260101-000000"), bank_code="0001")
    with pytest.raises(handoff.UnknownKey):  # the kid is another bank's
        handoff.handoff_open(sealed.envelope, bank_code="0005")
    assert not HandoffNonce.objects.exists()


def test_tampered_kid_naming_another_key_of_the_bank_is_refused(payable: Invoice) -> None:
    old = bank_with_key("0001")
    new = bank_with_key("0001")
    sealed = handoff.handoff_seal(invoice=payable, bank_code="0001", return_url="https://p.example/")
    assert sealed.kid == new.kid
    with pytest.raises(handoff.EnvelopeTampered):
        handoff.handoff_open(sealed.envelope.replace(new.kid, old.kid), bank_code="0001")
    with pytest.raises(handoff.EnvelopeTampered):
        handoff.handoff_open(flip(sealed.envelope, 3, 10), bank_code="0001")


def test_expired_envelope_is_refused(payable: Invoice) -> None:
    bank_with_key("0001")
    issued = timezone.now() - datetime.timedelta(minutes=30)
    sealed = handoff.handoff_seal(
        invoice=payable, bank_code="0001", return_url="https://p.example/", now=issued
    )
    with pytest.raises(handoff.EnvelopeExpired):
        handoff.handoff_open(sealed.envelope, bank_code="0001")
    just_in_time = issued + datetime.timedelta(minutes=29, seconds=59)
    assert handoff.handoff_open(sealed.envelope, bank_code="0001", now=just_in_time)


def test_replay_is_refused_and_nonces_are_pruned_after_expiry(payable: Invoice) -> None:
    bank_with_key("0001")
    sealed = handoff.handoff_seal(invoice=payable, bank_code="0001", return_url="https://p.example/")
    handoff.handoff_open(sealed.envelope, bank_code="0001")
    with pytest.raises(handoff.EnvelopeReplayed):
        handoff.handoff_open(sealed.envelope, bank_code="0001")
    later = timezone.now() + datetime.timedelta(minutes=32)
    assert handoff.nonces_prune(now=later) == 1
    with pytest.raises(handoff.EnvelopeExpired):  # once pruned, expiry still refuses it
        handoff.handoff_open(sealed.envelope, bank_code="0001", now=later)


def test_rotation_old_key_opens_new_key_seals_retired_key_refused(payable: Invoice, staff_user) -> None:  # type: ignore[no-untyped-def]
    first = bank_with_key("0001")
    in_flight = handoff.handoff_seal(invoice=payable, bank_code="0001", return_url="https://p.example/")
    also_in_flight = handoff.handoff_seal(invoice=payable, bank_code="0001", return_url="https://p.example/")
    second = bank_with_key("0001")
    first.refresh_from_db()
    assert (first.status, second.status) == ("retiring", "active")
    fresh = handoff.handoff_seal(invoice=payable, bank_code="0001", return_url="https://p.example/")
    assert fresh.kid == second.kid
    assert handoff.handoff_open(in_flight.envelope, bank_code="0001")  # the retiring key still opens
    assert handoff.handoff_open(fresh.envelope, bank_code="0001")
    services.handoff_key_retire(actor=staff_user, key=first)
    with pytest.raises(handoff.KeyRetired):
        handoff.handoff_open(also_in_flight.envelope, bank_code="0001")
    assert AuditEntry.objects.filter(action="handoff_key.retire").count() == 1


def test_no_active_key_means_no_hand_off(payable: Invoice) -> None:
    key = bank_with_key("0001")
    services.handoff_key_retire(actor=None, key=key)
    with pytest.raises(handoff.HandoffUnavailable):
        handoff.handoff_seal(invoice=payable, bank_code="0001", return_url="https://p.example/")


# --- the chooser's banks ------------------------------------------------------------------------------


def notice(biller: Biller, bank_code: str, *, channel: str = "05", days_ago: int = 0) -> Notice:
    n = next(_keys)
    day = selectors.jst_today() - datetime.timedelta(days=days_ago)
    return Notice.objects.create(
        transaction_key=f"MPNC000001{day:%Y%m%d}{n:08d}",
        kind="payment",
        biller=biller,
        key_date=day,
        customer_number=str(n),
        confirmation_number="1",
        amount=1000,
        bank_code=bank_code,
        branch_code="001",
        channel=channel,
        paid_at=timezone.now(),
    )


def test_chooser_lists_only_contracted_info_link_banks_with_endpoints(
    biller: Biller, other_biller: Biller
) -> None:
    today = selectors.jst_today()
    make_contract(biller, "0001", channels=("02", "05"))  # listed
    make_contract(biller, "0005", channels=("02", "03"))  # endpoint, but no 情報リンク contract
    make_contract(biller, "0009", channels=("05",))  # 情報リンク contract, no endpoint
    make_contract(biller, "0010", channels=("05",), valid_to=today - datetime.timedelta(days=1))  # ended
    make_contract(biller, "0036", channels=("05",))  # endpoint disabled
    make_contract(biller, "0033", channels=("05",))  # endpoint without an active key
    make_contract(other_biller, "0017", channels=("05",))  # another biller's contract
    for code in ("0001", "0005", "0010", "0036", "0017"):
        bank_with_key(code)
    services.handoff_endpoint_create(actor=None, bank_code="0033", entry_url="https://b.example/")
    HandoffEndpoint.objects.filter(bank_code="0036").update(enabled=False)
    assert [b.code for b in selectors.handoff_banks(biller, today)] == ["0001"]
    assert selectors.handoff_banks(biller, today)[0].bank.name == "みずほ"  # from the 全銀 master
    assert [b.code for b in selectors.handoff_banks(other_biller, today)] == ["0017"]
    assert selectors.handoff_bank(biller, today, "0005") is None


def test_chooser_search_by_name_and_kana(biller: Biller) -> None:
    today = selectors.jst_today()
    for code in ("0001", "0005", "0009"):
        make_contract(biller, code, channels=("05",))
        bank_with_key(code)
    for query in ("みずほ", "ミズホ", "ﾐｽﾞﾎ", "みず", "mizuho", "0001"):
        assert [b.code for b in selectors.handoff_banks(biller, today, query=query)] == ["0001"], query
    assert [b.code for b in selectors.handoff_banks(biller, today, query="三井")] == ["0009"]
    assert [b.code for b in selectors.handoff_banks(biller, today, query="みつい")] == ["0009"]
    assert [b.code for b in selectors.handoff_banks(biller, today, query="ミツ")] == ["0009", "0005"]
    assert selectors.handoff_banks(biller, today, query="ゆうちょ") == []


def test_chooser_lists_frequently_used_banks_first(biller: Biller, other_biller: Biller) -> None:
    today = selectors.jst_today()
    for code in ("0001", "0005", "0009"):
        make_contract(biller, code, channels=("02", "05"))
        bank_with_key(code)
    by_name = [b.code for b in selectors.handoff_banks(biller, today)]
    assert by_name == ["0001", "0009", "0005"]  # ﾐｽﾞﾎ, ﾐﾂｲｽﾐﾄﾓ, ﾐﾂﾋﾞｼ…: by name, in kana order
    for _ in range(3):
        notice(biller, "0009")
    notice(biller, "0005")
    notice(biller, "0005", days_ago=10)
    notice(biller, "0001", days_ago=120)  # too long ago
    for _ in range(5):
        notice(biller, "0001", channel="02")  # an ATM payment: not 情報リンク
        notice(other_biller, "0001")  # another biller's payers
    banks = selectors.handoff_banks(biller, today)
    assert [(b.code, b.uses) for b in banks] == [("0009", 3), ("0005", 2), ("0001", 0)]


# --- the pages of the customer portal -----------------------------------------------------------------


@pytest.fixture
def portal(biller: Biller) -> dict[str, Any]:
    customer = make_customer(biller)
    account = make_portal_account(biller, customer)
    make_contract(biller, "0001", channels=("02", "05"))
    make_contract(biller, "0009", channels=("02", "05"))
    bank_with_key("0001")
    bank_with_key("0009")
    invoice = published_invoice(biller, price=5000, customer=customer)
    client = Client()
    client.force_login(account.user)
    return {"client": client, "invoice": invoice, "user": account.user, "customer": customer}


def chooser_url(invoice: Invoice) -> str:
    return tenant_reverse(invoice.biller, "portal:pay", kwargs={"pk": invoice.pk})


def handoff_url(invoice: Invoice, bank_code: str) -> str:
    return tenant_reverse(
        invoice.biller, "portal:pay_handoff", kwargs={"pk": invoice.pk, "bank_code": bank_code}
    )


def test_chooser_page_lists_the_banks_with_links_to_the_hand_off(portal: dict[str, Any]) -> None:
    invoice = portal["invoice"]
    response = portal["client"].get(chooser_url(invoice))
    assert response.status_code == 200
    page = response.content.decode()
    assert handoff_url(invoice, "0001") in page and handoff_url(invoice, "0009") in page
    assert "みずほ" in page and "三井住友" in page
    searched = portal["client"].get(chooser_url(invoice), {"q": "ミツイ"}).content.decode()
    assert handoff_url(invoice, "0009") in searched and handoff_url(invoice, "0001") not in searched


def test_hand_off_page_posts_the_envelope_to_the_entry_url(portal: dict[str, Any]) -> None:
    invoice = portal["invoice"]
    response = portal["client"].get(handoff_url(invoice, "0001"))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    page = response.content.decode()
    form = re.search(r"<form method=\"post\" action=\"([^\"]+)\" id=\"handoff-form\" data-auto-submit>", page)
    assert form and form.group(1) == "https://bank.example/paylink"
    assert re.search(r"<button type=\"submit\" class=\"primary\">[^<]*みずほ", page)  # works without JS
    assert re.search(r'<script src="[^"]*/static/js/handoff.js" defer></script>', page)
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)  # no inline script
    assert "csrfmiddlewaretoken" not in page.split('id="handoff-form"')[1].split("</form>")[0]
    envelope = html.unescape(re.search(r'name="envelope" value="([^"]+)"', page).group(1))  # type: ignore[union-attr]
    payload = handoff.handoff_open(envelope, bank_code="0001")
    detail = tenant_reverse(invoice.biller, "portal:invoice_detail", kwargs={"pk": invoice.pk})
    assert payload.return_url == f"http://testserver{detail}?returned=1"
    assert payload.amount == invoice.total and payload.customer_number == invoice.customer_number
    # every visit seals a new envelope
    again = portal["client"].get(handoff_url(invoice, "0001")).content.decode()
    assert re.search(r'name="envelope" value="([^"]+)"', again).group(1) != envelope  # type: ignore[union-attr]


def test_a_path_entry_url_posts_to_the_root_site(portal: dict[str, Any]) -> None:
    HandoffEndpoint.objects.filter(bank_code="0001").update(entry_url="/sandbox-bank/entry/")
    page = portal["client"].get(handoff_url(portal["invoice"], "0001")).content.decode()
    assert 'action="/sandbox-bank/entry/"' in page


def test_a_bank_not_in_the_chooser_is_404(portal: dict[str, Any]) -> None:
    assert portal["client"].get(handoff_url(portal["invoice"], "0005")).status_code == 404
    assert portal["client"].get(handoff_url(portal["invoice"], "abcd")).status_code == 404


def test_another_customers_invoice_is_404(portal: dict[str, Any], biller: Biller) -> None:
    theirs = published_invoice(biller, price=3000)  # another customer of the same biller
    for url in (chooser_url(theirs), handoff_url(theirs, "0001")):
        assert portal["client"].get(url).status_code == 404


def test_another_billers_invoice_and_other_users_are_refused(
    portal: dict[str, Any], other_biller: Biller
) -> None:
    invoice = portal["invoice"]
    make_contract(other_biller, "0001", channels=("05",))
    elsewhere = published_invoice(other_biller, price=3000)
    # the other biller's invoice id through this biller's portal
    url = chooser_url(invoice).replace(f"/{invoice.pk}/", f"/{elsewhere.pk}/")
    assert portal["client"].get(url).status_code == 404
    # a payer of the other biller, a tenant admin, iDC staff
    for user in (
        make_portal_account(other_biller).user,
        make_member(invoice.biller),
        make_user("staff-x@idc.test", is_idc_staff=True),
    ):
        client = Client()
        client.force_login(user)
        assert client.get(chooser_url(invoice)).status_code == 404
        assert client.get(handoff_url(invoice, "0001")).status_code == 404
    anonymous = Client().get(handoff_url(invoice, "0001"))
    assert anonymous.status_code == 302 and "login" in anonymous["Location"]


def test_a_paid_invoice_has_no_hand_off(portal: dict[str, Any]) -> None:
    invoice = portal["invoice"]
    Invoice.objects.filter(pk=invoice.pk).update(status=Invoice.Status.PAID)
    response = portal["client"].get(handoff_url(invoice, "0001"))
    assert response.status_code in (404, 409)
    assert "envelope" not in response.content.decode()


def test_the_permission_rule_and_frame_are_the_portals() -> None:
    """The pages ask the customer portal's own rule and use its frame, imported directly (payeasy may
    import billing): no lookup by name, no fallback rule, no probing for templates."""
    import inspect

    from billing.portal import services as portal_services

    assert paying.can_pay is portal_services.can_pay
    assert paying.account_of is portal_services.account_of
    assert paying.BASE_TEMPLATE == "billing/portal/base.html"
    source = inspect.getsource(paying)
    for word in ("importlib", "import_module", "default_can_pay", "TemplateDoesNotExist"):
        assert word not in source, word


# --- the staff console --------------------------------------------------------------------------------


def test_staff_set_up_a_bank_create_a_key_shown_once_and_retire_it(staff_client: Client) -> None:
    assert staff_client.get("/staff/handoff/").status_code == 200
    response = staff_client.post(
        "/staff/handoff/new/",
        {"bank_code": "0001 みずほ", "entry_url": "https://bank.example/in", "enabled": "on"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    endpoint = HandoffEndpoint.objects.get()
    assert (endpoint.bank_code, endpoint.enabled) == ("0001", True)
    shown = staff_client.post(f"/staff/handoff/{endpoint.pk}/keys/")
    assert shown.status_code == 200 and "no-store" in shown["Cache-Control"]
    key = HandoffKey.objects.get()
    material = handoff.key_unwrap(key.wrapped_key, key.kid)
    assert handoff.b64e(material) in shown.content.decode() and material.hex() in shown.content.decode()
    edit = staff_client.get(f"/staff/handoff/{endpoint.pk}/").content.decode()
    assert key.kid in edit and handoff.b64e(material) not in edit and material.hex() not in edit
    listing = staff_client.get("/staff/handoff/").content.decode()
    assert key.kid in listing and handoff.b64e(material) not in listing
    staff_client.post(f"/staff/handoff/{endpoint.pk}/keys/")
    key.refresh_from_db()
    assert key.status == "retiring"
    assert staff_client.post(f"/staff/handoff/{endpoint.pk}/keys/{key.pk}/retire/").status_code == 302
    key.refresh_from_db()
    assert key.status == "retired" and key.retired_at is not None
    response = staff_client.post(f"/staff/handoff/{endpoint.pk}/", {"entry_url": "https://bank.example/v2"})
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.entry_url, endpoint.enabled) == ("https://bank.example/v2", False)
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {
        "handoff_endpoint.create",
        "handoff_endpoint.update",
        "handoff_key.create",
        "handoff_key.retire",
    } <= actions


@pytest.mark.parametrize(
    ("data", "field", "text"),
    [
        ({"bank_code": "0002", "entry_url": "https://b.example/"}, "bank_code", "bank master"),
        ({"bank_code": "0001", "entry_url": "javascript:alert(1)"}, "entry_url", "https://"),
        ({"bank_code": "0001", "entry_url": "http://bank.example/in"}, "entry_url", "https://"),
    ],
)
@override_settings(PAYEASY_HANDOFF_REQUIRE_HTTPS=True)
def test_bad_endpoint_input_names_the_field(staff_client: Client, data: dict, field: str, text: str) -> None:
    response = staff_client.post("/staff/handoff/new/", data)
    assert response.status_code == 400
    assert text in response.content.decode() and f'href="#id_{field}"' in response.content.decode()
    assert not HandoffEndpoint.objects.exists()


def test_one_endpoint_per_bank(staff_client: Client) -> None:
    services.handoff_endpoint_create(actor=None, bank_code="0001", entry_url="https://b.example/")
    response = staff_client.post(
        "/staff/handoff/new/", {"bank_code": "0001", "entry_url": "https://c.example/"}
    )
    assert response.status_code == 400 and "already has" in response.content.decode()


def test_staff_console_is_for_idc_staff(client: Client, biller: Biller) -> None:
    endpoint = services.handoff_endpoint_create(actor=None, bank_code="0001", entry_url="https://b.example/")
    client.force_login(make_member(biller))
    assert client.get("/staff/handoff/").status_code == 403
    assert client.post(f"/staff/handoff/{endpoint.pk}/keys/").status_code == 403
    assert not HandoffKey.objects.exists()


def test_staff_navigation_links_the_handoff_pages(staff_client: Client) -> None:
    assert 'href="/staff/handoff/"' in staff_client.get("/staff/").content.decode()
