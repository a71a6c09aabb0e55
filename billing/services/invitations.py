"""Invitations: the one mechanism behind every invitation link, and the console's member invitations.

Two flows invite people. A biller's console invites members (:class:`~billing.models.Invitation`,
here) and invites a customer's people to the portal (:class:`~billing.models.CustomerInvitation`,
``billing.portal.services.invitations``). Both are an :class:`InvitationKind`: a new token of which
only the SHA-256 is stored, an expiry from a setting, the pending invitation of a token, the same
check again under a row lock (single use), accepting and revoking, and the words for a link that no
longer works. The flows add what is theirs: who may be invited, and what accepting creates.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing import events
from billing.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from billing.models import Biller, CustomerInvitation, Invitation, Membership, User, console_login
from billing.services.audit import audit_field_set, audit_record
from billing.services.members import user_credentials_set
from billing.services.tokens import token_hash, token_new

AnyInvitation = TypeVar("AnyInvitation", Invitation, CustomerInvitation)


@dataclass(frozen=True)
class InvitationKind:
    """What differs between the kinds of invitation: their lifetime and the words for a revoked link."""

    ttl_setting: str  # the setting that holds the lifetime, in hours
    revoked_text: str | Promise

    def create(self, model: type[AnyInvitation], **fields: Any) -> tuple[AnyInvitation, str]:
        """Insert an invitation with ``fields``, a new token's hash and its expiry (inside the caller's
        transaction). Returns it with the token, which goes into the e-mail alone."""
        token = token_new()
        expires_at = timezone.now() + datetime.timedelta(hours=getattr(settings, self.ttl_setting))
        invitation = model.objects.create(token_hash=token_hash(token), expires_at=expires_at, **fields)
        return invitation, token

    def gone_text(self, state: str) -> str:
        """Why a link that is not pending does not work, in the words of its state."""
        labels = {
            "accepted": _("This invitation link has already been used."),
            "revoked": self.revoked_text,
            "expired": _("This invitation link has expired."),
        }
        return str(labels.get(state, _("This invitation link is not valid.")))

    def not_valid(self) -> NotFound:
        """The error of a token that matches no invitation (or one that may not be used)."""
        return NotFound(_("This invitation link is not valid."), code="invitation_invalid")

    def pending(self, invitations: QuerySet[AnyInvitation], *, token: str) -> AnyInvitation:
        """The pending invitation among ``invitations`` for ``token``; NotFound for any other."""
        invitation = invitations.filter(token_hash=token_hash(token)).first()
        if invitation is None:
            raise self.not_valid()
        state = invitation.state
        if state != "pending":
            raise NotFound(self.gone_text(state), code=f"invitation_{state}")
        return invitation

    def lock_pending(self, pending: AnyInvitation) -> AnyInvitation:
        """``pending`` again under a row lock: single use, whoever used it between the read and the lock."""
        invitation = type(pending).objects.select_for_update().get(pk=pending.pk)
        if invitation.state != "pending":
            raise NotFound(self.gone_text(invitation.state), code="invitation_used")
        return invitation

    def mark_accepted(self, invitation: AnyInvitation, *, user: User) -> None:
        """Mark a locked invitation used by ``user`` (inside the accepting transaction)."""
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])

    def revoke(self, locked: AnyInvitation) -> None:
        """Revoke a locked invitation; only a pending one can be."""
        if locked.state != "pending":
            raise InvalidTransition(self.gone_text(locked.state), field="invitation")
        locked.revoked_at = timezone.now()
        locked.save(update_fields=["revoked_at"])


MEMBER_INVITATION = InvitationKind(
    ttl_setting="INVITATION_TTL_HOURS", revoked_text=gettext_lazy("This invitation link has been revoked.")
)
CUSTOMER_INVITATION = InvitationKind(
    ttl_setting="PORTAL_INVITATION_TTL_HOURS",
    revoked_text=gettext_lazy("This invitation link has been replaced or revoked."),
)


# --- the console's member invitations --------------------------------------------------------------------


def invitation_create(*, actor: User, biller: Biller, email: str, role: str) -> tuple[Invitation, str]:
    """Invite a person to a biller's console. Returns the invitation and its token (shown nowhere else).

    The e-mail is sent by a worker once the invitation is committed.
    """
    if role not in Membership.Role.values:
        raise ValidationFailed({"role": [_("unknown role %(role)r") % {"role": role}]})
    try:
        validate_email(email)
    except ValidationError as exc:
        raise ValidationFailed({"email": [str(m) for m in exc.messages]}) from exc
    if biller.is_suspended:
        raise InvalidTransition(_("A suspended biller cannot invite members."), field="biller")
    with transaction.atomic():
        invitation, token = MEMBER_INVITATION.create(
            Invitation, biller=biller, email=email.strip(), role=role, created_by=actor
        )
        audit_record(
            actor=actor,
            action="invitation.create",
            biller=biller,
            target=invitation,
            summary=f"{invitation.email} ({role})",
            after={"email": invitation.email, "role": role, "expires_at": invitation.expires_at},
        )
        events.after_commit("billing.tasks.invitation_send", invitation.pk, token)
    return invitation, token


def invitation_get_pending(*, token: str) -> Invitation:
    """The pending invitation for a token; NotFound for a wrong, used, revoked or expired one."""
    invitation = MEMBER_INVITATION.pending(Invitation.objects.select_related("biller"), token=token)
    if invitation.biller.is_suspended:
        raise MEMBER_INVITATION.not_valid()
    return invitation


def invitation_accept(
    *, token: str, user: User | None = None, name: str = "", password: str = ""
) -> Membership:
    """Accept an invitation: as the logged-in ``user``, or by creating a console account.

    Single use: the invitation row is locked and marked accepted in the same
    transaction that creates the membership.
    """
    with transaction.atomic():
        invitation = MEMBER_INVITATION.lock_pending(invitation_get_pending(token=token))
        if user is None:
            login = console_login(invitation.email)
            if User.objects.filter(login=login).exists():
                raise Conflict(
                    _("An account with this e-mail exists: log in first, then open the link again."),
                    code="login_required",
                )
            candidate = User(login=login, email=invitation.email, name=name.strip())
            user_credentials_set(user=candidate, password=password)
            candidate.save()
            user = candidate
            audit_record(
                actor=user, action="user.create", biller=invitation.biller, target=user, summary=login
            )
        elif console_login(user.email) != console_login(invitation.email):
            raise Conflict(
                _("This invitation was sent to another e-mail address. Log out and open the link again."),
                code="wrong_account",
            )
        membership, created = Membership.objects.get_or_create(
            biller=invitation.biller, user=user, defaults={"role": invitation.role}
        )
        if not created:
            audit_field_set(
                actor=user,
                action="membership.role",
                biller=invitation.biller,
                target=membership,
                field="role",
                value=invitation.role,
            )
        MEMBER_INVITATION.mark_accepted(invitation, user=user)
        audit_record(
            actor=user,
            action="invitation.accept",
            biller=invitation.biller,
            target=invitation,
            summary=f"{invitation.email} ({invitation.role})",
        )
    return membership


def invitation_revoke(*, actor: User, invitation: Invitation) -> Invitation:
    with transaction.atomic():
        locked = Invitation.objects.select_for_update().get(pk=invitation.pk)
        MEMBER_INVITATION.revoke(locked)
        audit_record(
            actor=actor, action="invitation.revoke", biller=locked.biller, target=locked, summary=locked.email
        )
    return locked


__all__ = [
    "CUSTOMER_INVITATION",
    "MEMBER_INVITATION",
    "InvitationKind",
    "invitation_accept",
    "invitation_create",
    "invitation_get_pending",
    "invitation_revoke",
]
