"""Reads of the billing app that carry a rule."""

from __future__ import annotations

from django.db.models import QuerySet

from billing.models import AuditEntry, Biller, Customer, Invitation, Membership, User


def membership_for(*, user: User, biller: Biller) -> Membership | None:
    return Membership.objects.filter(user=user, biller=biller).first()


def memberships_of(*, user: User) -> list[Membership]:
    return list(
        Membership.objects.filter(user=user)
        .exclude(biller__status=Biller.Status.SUSPENDED)
        .select_related("biller")
        .order_by("biller__legal_name")
    )


def member_list(*, biller: Biller) -> QuerySet[Membership]:
    return Membership.objects.filter(biller=biller).select_related("user").order_by("user__email")


def invitation_list(*, biller: Biller) -> QuerySet[Invitation]:
    return Invitation.objects.filter(biller=biller).select_related("created_by", "accepted_by")


def biller_counts(*, biller: Biller) -> dict[str, int]:
    return {
        "customers": Customer.objects.filter(biller=biller).count(),
        "members": Membership.objects.filter(biller=biller).count(),
    }


def biller_list(*, query: str = "", status: str = "") -> QuerySet[Biller]:
    from django.db.models import Q

    qs = Biller.objects.all()
    if status:
        qs = qs.filter(status=status)
    q = query.strip()
    if q:
        from billing.kana import to_zengin_kana

        qs = qs.filter(
            Q(legal_name__icontains=q)
            | Q(short_name__icontains=q)
            | Q(name_kana__icontains=to_zengin_kana(q))
            | Q(biller_code__startswith=q)
            | Q(payee_number__startswith=q)
            | Q(slug__icontains=q.lower())
        )
    return qs.order_by("biller_code")


def audit_list(*, biller: Biller | None = None, action: str = "", actor: str = "") -> QuerySet[AuditEntry]:
    qs = AuditEntry.objects.select_related("biller")
    if biller is not None:
        qs = qs.filter(biller=biller)
    if action:
        qs = qs.filter(action__startswith=action)
    if actor:
        qs = qs.filter(actor_label__icontains=actor)
    return qs
