"""Tenant scoping of rows: the tenant-owned models' manager and the one view base that owns the filter.

Model side. Every tenant-owned model (a ``biller`` foreign key) has ``objects = TenantManager()``:

- ``Model.objects.for_biller(biller)`` — the tenant's rows (no biller: no rows);
- ``Model.objects.cross_tenant("staff")`` — every tenant's rows, for the paths that cross tenants on
  purpose, named by one of ``BYPASS_REASONS`` (the database side of the same names is
  ``billing.tenancy.cross_tenant``). Any other name is refused.

View side. ``TenantScopedMixin`` is inherited by the console base (``billing.views.TenantConsoleView``),
the API base (``billing.api.base.TenantAPIView``) and the portal base (``billing.portal.views.PortalView``).
It owns ``get_queryset``/``get_object``: the rows of ``model`` of the request's tenant
(``request.biller``), so another tenant's object answers 404 exactly like a missing one. A subclass
narrows with ``scoped_queryset(qs)`` and cannot override the two owners: the class is refused when it is
created (PostHog's ``TeamAndOrgViewSetMixin`` and its ``safely_get_queryset`` work the same way).
tests/billing/test_scoping.py checks that the view modules reach tenant rows no other way.

This module imports nothing of the project (the models import it).
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.core.exceptions import ImproperlyConfigured, ObjectDoesNotExist, ValidationError
from django.db import models
from django.http import Http404

_M = TypeVar("_M", bound=models.Model)

# The named cross-tenant paths (``billing.tenancy.cross_tenant``, ``TenantQuerySet.cross_tenant``): a
# reason not listed here is refused.
BYPASS_REASONS = frozenset(
    {
        "line",  # the commserver: looks invoices up by number, of any biller (payeasy.line)
        "worker",  # Celery tasks: take ids of any tenant (payments, notifications, webhooks, imports)
        "staff",  # the iDC staff console
        "health",  # /readyz and /metrics: counts and states, no tenant data
        "pages",  # page fingerprints: the row versions (xmin) of what a kept page shows (billing.page_cache)
        "accounts",  # sign-in, sign-out, invitations, the home page: a user's memberships of every biller
        "payer",  # the payer's pages reached without a tenant (sandbox bank, 情報リンク hand-off)
        "command",  # management commands (seed_demo, imports, the simulator, …)
        "migrate",  # migrations, as the owner
        "tests",  # the test suite's own fixtures (never a request: see tests/conftest.py)
    }
)


class CrossTenantRefused(ValueError):
    pass


def bypass_reason_check(reason: str) -> str:
    """``reason`` if it names a cross-tenant path (``BYPASS_REASONS``); ``CrossTenantRefused`` if not."""
    if reason not in BYPASS_REASONS:
        raise CrossTenantRefused(f"not a named cross-tenant path: {reason!r}")
    return reason


class TenantQuerySet(models.QuerySet[_M]):
    """Rows of a tenant-owned model, reached by tenant (``for_biller``) or across tenants by name."""

    def for_biller(self, biller: models.Model | int | None) -> TenantQuerySet[_M]:
        """The rows of ``biller`` (a biller or its id); none at all without one (fail closed)."""
        if biller is None:
            return self.none()
        return self.filter(biller=biller)

    def cross_tenant(self, reason: str) -> TenantQuerySet[_M]:
        """Every tenant's rows, on a named cross-tenant path (the staff console: ``"staff"``)."""
        bypass_reason_check(reason)
        return self.all()


TenantManager = models.Manager.from_queryset(TenantQuerySet)
TenantManager.__doc__ = "The manager of every tenant-owned model: ``for_biller`` and ``cross_tenant``."

SCOPING_OWNED = ("get_queryset", "get_object")


class TenantScopedMixin:
    """The rows of ``model`` of the request's tenant, and nothing else.

    ``get_queryset()`` is ``scoped_queryset(<all rows of model>)`` filtered by ``request.biller`` (none
    without a tenant: fail closed); ``get_object(pk)`` is one of those rows or 404, the same 404 for a
    missing id and another tenant's. Subclasses set ``model`` and may override ``scoped_queryset`` to
    narrow (filter, select_related, order); the tenant filter is applied after it, so it cannot widen.
    """

    model: type[models.Model] | None = None
    request: Any
    kwargs: Any

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in SCOPING_OWNED:
            if getattr(cls, name) is not getattr(TenantScopedMixin, name):
                raise ImproperlyConfigured(
                    f"{cls.__module__}.{cls.__qualname__} overrides {name}(), which TenantScopedMixin owns "
                    "(the tenant filter): override scoped_queryset(qs) to narrow the rows instead."
                )

    def scoped_queryset(self, qs: models.QuerySet[Any]) -> models.QuerySet[Any]:
        """Narrow ``qs`` (filter, select_related, order_by); the tenant filter is applied afterwards."""
        return qs

    def request_biller(self) -> Any:
        """The tenant of this request (``request.biller``, set by ``billing.tenancy.TenantMiddleware``)."""
        return getattr(getattr(self, "request", None), "biller", None)

    def get_queryset(self) -> models.QuerySet[Any]:
        if self.model is None:
            raise ImproperlyConfigured(f"{type(self).__qualname__} sets no model")
        manager = self.model._default_manager
        biller = self.request_biller()
        if biller is None:  # a tenant view reached outside a tenant: no rows
            return manager.none()
        qs = self.scoped_queryset(manager.all())
        if qs.model is not self.model:
            raise ImproperlyConfigured(f"{type(self).__qualname__}.scoped_queryset changed the model")
        return qs.filter(biller=biller)

    def get_object(self, pk: Any = None) -> Any:
        """The tenant's row with this id (default: the URL's ``pk``); 404 for a missing one and for
        another tenant's alike."""
        if pk is None:
            pk = (getattr(self, "kwargs", None) or {}).get("pk")
        try:
            return self.get_queryset().get(pk=pk)
        except (ObjectDoesNotExist, ValidationError, ValueError, TypeError) as exc:
            raise Http404 from exc
