import pytest

from billing import services
from billing.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from billing.models import AuditEntry, Biller, Membership, User
from tests.factories import biller_data, make_biller, make_user

pytestmark = pytest.mark.django_db


def test_biller_create_converts_kana_and_audits(staff_user: User) -> None:
    data = biller_data(name_kana="みどりつうはん（かぶ）", short_name="みどり通販 WEB")
    biller = services.biller_create(actor=staff_user, data=data)
    assert biller.name_kana == "ﾐﾄﾞﾘﾂｳﾊﾝ(ｶﾌﾞ)"
    assert biller.short_name == "みどり通販\u3000ＷＥＢ"
    assert biller.status == Biller.Status.ONBOARDING
    entry = AuditEntry.objects.get(action="biller.create")
    assert entry.biller == biller and entry.actor == staff_user
    assert entry.after["biller_code"] == biller.biller_code


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("payee_number", "5819", "exactly 5 digits"),
        ("biller_code", "5819100", "exactly 8 digits"),
        ("registration_number", "T8000012050002", "check digit"),
        ("name_kana", "東都ﾃﾞﾝﾘﾖｸ", "全銀"),
        ("slug", "staff", "reserved"),
        ("slug", "A", "lower-case"),
        ("short_name", "東都電力株式会社東京本店営業", "at most 12"),
    ],
)
def test_biller_create_rejects_bad_values_naming_the_field(
    staff_user: User, field: str, value: str, message: str
) -> None:
    with pytest.raises(ValidationFailed) as exc:
        services.biller_create(actor=staff_user, data=biller_data(**{field: value}))
    assert field in exc.value.errors
    assert message in " ".join(exc.value.errors[field])
    assert not Biller.objects.exists()
    assert not AuditEntry.objects.exists()


def test_biller_code_must_start_with_payee_number(staff_user: User) -> None:
    with pytest.raises(ValidationFailed) as exc:
        services.biller_create(
            actor=staff_user, data=biller_data(payee_number="58191", biller_code="58192001")
        )
    assert "biller_code" in exc.value.errors


def test_duplicate_biller_code_and_slug_are_rejected(staff_user: User) -> None:
    first = services.biller_create(actor=staff_user, data=biller_data())
    with pytest.raises(ValidationFailed) as exc:
        services.biller_create(
            actor=staff_user,
            data=biller_data(payee_number=first.payee_number, biller_code=first.biller_code, slug=first.slug),
        )
    assert "Another biller already has this biller code." in exc.value.errors["biller_code"]
    assert "Another biller already uses this portal slug." in exc.value.errors["slug"]
    assert Biller.objects.count() == 1


def test_status_transitions_are_audited_and_bad_ones_refused(staff_user: User) -> None:
    biller = services.biller_create(actor=staff_user, data=biller_data())
    with pytest.raises(InvalidTransition):
        services.biller_set_status(actor=staff_user, biller=biller, status="onboarding")
    services.biller_set_status(actor=staff_user, biller=biller, status="active")
    services.biller_set_status(actor=staff_user, biller=biller, status="suspended", reason="unpaid fees")
    biller = services.biller_set_status(actor=staff_user, biller=biller, status="active")
    actions = list(AuditEntry.objects.filter(biller=biller).order_by("id").values_list("action", flat=True))
    assert actions == ["biller.create", "biller.activate", "biller.suspend", "biller.reactivate"]
    suspend = AuditEntry.objects.get(action="biller.suspend")
    assert suspend.before == {"status": "active"} and suspend.after == {"status": "suspended"}
    assert suspend.summary == "unpaid fees"


def test_biller_update_records_only_what_changed(staff_user: User) -> None:
    biller = make_biller()
    services.biller_update(
        actor=staff_user, biller=biller, data={"contact_name": "新担当", "legal_name": biller.legal_name}
    )
    entry = AuditEntry.objects.get(action="biller.update")
    assert entry.before == {"contact_name": "担当 一郎"}
    assert entry.after == {"contact_name": "新担当"}


def test_invitation_is_single_use(staff_user: User, mailoutbox, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    biller = make_biller()
    with django_capture_on_commit_callbacks(execute=True):
        invitation, token = services.invitation_create(
            actor=staff_user, biller=biller, email="New.Admin@Example.jp", role="admin"
        )
    assert len(mailoutbox) == 1
    assert token in mailoutbox[0].body and mailoutbox[0].to == ["New.Admin@Example.jp"]
    assert token not in invitation.token_hash  # only the hash is stored
    membership = services.invitation_accept(token=token, name="新 管理者", password="a-long-unique-pass")
    assert membership.role == Membership.Role.ADMIN and membership.biller == biller
    assert membership.user.login == "new.admin@example.jp"
    with pytest.raises(NotFound, match="already been used"):
        services.invitation_accept(token=token, name="again", password="a-long-unique-pass")
    assert Membership.objects.filter(biller=biller).count() == 1


def test_expired_invitation_is_refused(staff_user: User, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    import datetime

    from django.utils import timezone

    from billing.models import Invitation

    biller = make_biller()
    invitation, token = services.invitation_create(
        actor=staff_user, biller=biller, email="a@example.jp", role="admin"
    )
    Invitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    with pytest.raises(NotFound, match="expired"):
        services.invitation_accept(token=token, name="x", password="a-long-unique-pass")
    with pytest.raises(NotFound, match="not valid"):
        services.invitation_accept(token=token + "x", name="x", password="a-long-unique-pass")
    assert not Membership.objects.exists()


def test_invitation_for_existing_email_requires_that_user(staff_user: User) -> None:
    biller = make_biller()
    existing = make_user("known@example.jp")
    _, token = services.invitation_create(
        actor=staff_user, biller=biller, email="known@example.jp", role="operator"
    )
    with pytest.raises(Conflict):
        services.invitation_accept(token=token, name="x", password="a-long-unique-pass")
    with pytest.raises(Conflict):
        services.invitation_accept(token=token, user=make_user("someone@example.jp"))
    membership = services.invitation_accept(token=token, user=existing)
    assert membership.user == existing and membership.role == "operator"


def test_weak_password_is_refused_and_nothing_created(staff_user: User) -> None:
    biller = make_biller()
    _, token = services.invitation_create(actor=staff_user, biller=biller, email="w@example.jp", role="admin")
    with pytest.raises(ValidationFailed) as exc:
        services.invitation_accept(token=token, name="x", password="12345678901")
    assert "password" in exc.value.errors
    assert not User.objects.filter(login="w@example.jp").exists()
    services.invitation_accept(token=token, name="x", password="a-long-unique-pass")  # still usable
