"""One invitation mechanism (billing.services.invitations.InvitationKind) behind both flows: the
console's member invitations and the portal's customer invitations."""

from __future__ import annotations

import datetime
import hashlib
from typing import Any

import pytest
from django.utils import timezone

from billing.errors import InvalidTransition, NotFound
from billing.models import AuditEntry, User
from billing.portal.services import invitations as portal_invitations
from billing.services import invitations
from tests.factories import make_biller, make_customer

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-unique-pass"


def _member(staff_user: User) -> tuple[Any, str, Any]:
    invitation, token = invitations.invitation_create(
        actor=staff_user, biller=make_biller(), email="new@example.jp", role="admin"
    )
    return invitation, token, invitations.MEMBER_INVITATION


def _customer(staff_user: User) -> tuple[Any, str, Any]:
    biller = make_biller()
    invitation, token = portal_invitations.customer_invitation_create(
        actor=staff_user, biller=biller, customer=make_customer(biller), email="new@example.jp", send=False
    )
    return invitation, token, invitations.CUSTOMER_INVITATION


FLOWS = [
    pytest.param(_member, "INVITATION_TTL_HOURS", "invitation.revoke", id="member"),
    pytest.param(_customer, "PORTAL_INVITATION_TTL_HOURS", "customer_invitation.revoke", id="customer"),
]


def _accept(invitation: Any, token: str) -> Any:
    if hasattr(invitation, "customer_id"):
        return portal_invitations.customer_invitation_accept(
            biller=invitation.biller, token=token, name="新 太郎", password=PASSWORD
        )
    return invitations.invitation_accept(token=token, name="新 太郎", password=PASSWORD)


def _revoke(invitation: Any, actor: User) -> None:
    if hasattr(invitation, "customer_id"):
        portal_invitations.customer_invitation_revoke(
            actor=actor, biller=invitation.biller, invitation=invitation
        )
    else:
        invitations.invitation_revoke(actor=actor, invitation=invitation)


@pytest.mark.parametrize(("flow", "ttl_setting", "_revoke_action"), FLOWS)
def test_only_the_hash_is_stored_and_the_lifetime_is_the_flows_setting(
    staff_user: User, settings: Any, flow: Any, ttl_setting: str, _revoke_action: str
) -> None:
    setattr(settings, ttl_setting, 5)
    before = timezone.now()
    invitation, token, _kind = flow(staff_user)
    assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in invitation.token_hash
    lifetime = invitation.expires_at - before
    assert datetime.timedelta(hours=5) <= lifetime < datetime.timedelta(hours=5, seconds=30)


@pytest.mark.parametrize(("flow", "_ttl", "revoke_action"), FLOWS)
def test_a_revoked_link_is_refused_in_the_flows_words(
    staff_user: User, flow: Any, _ttl: str, revoke_action: str
) -> None:
    invitation, token, kind = flow(staff_user)
    _revoke(invitation, staff_user)
    assert AuditEntry.objects.filter(action=revoke_action).count() == 1
    with pytest.raises(InvalidTransition) as again:
        _revoke(invitation, staff_user)
    assert str(again.value) == kind.gone_text("revoked")
    with pytest.raises(NotFound) as refused:
        _accept(invitation, token)
    assert refused.value.code == "invitation_revoked"
    assert str(refused.value) == kind.gone_text("revoked")


@pytest.mark.parametrize(("flow", "_ttl", "_revoke_action"), FLOWS)
def test_single_use_and_a_wrong_token(staff_user: User, flow: Any, _ttl: str, _revoke_action: str) -> None:
    invitation, token, _kind = flow(staff_user)
    _accept(invitation, token)
    invitation.refresh_from_db()
    assert invitation.state == "accepted" and invitation.accepted_by is not None
    with pytest.raises(NotFound, match="already been used") as used:
        _accept(invitation, token)
    assert used.value.code == "invitation_accepted"
    with pytest.raises(NotFound, match="not valid") as wrong:
        _accept(invitation, token + "x")
    assert wrong.value.code == "invitation_invalid"


def test_the_two_kinds_differ_only_in_the_words_of_a_revoked_link() -> None:
    member, customer = invitations.MEMBER_INVITATION, invitations.CUSTOMER_INVITATION
    for state in ("accepted", "expired", "unknown"):
        assert member.gone_text(state) == customer.gone_text(state)
    assert member.gone_text("revoked") == "This invitation link has been revoked."
    assert customer.gone_text("revoked") == "This invitation link has been replaced or revoked."
