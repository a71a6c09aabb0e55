"""The one base every tenant API view inherits: it owns the tenant filter."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import generics
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from billing import selectors
from billing.api.auth import ApiKeyAuthentication
from billing.errors import ValidationFailed
from billing.models import ApiKey, Biller


class IsTenantMember(BasePermission):
    """The caller is a member of the biller the request is for; operators may only read."""

    def has_permission(self, request: Request, view: Any) -> bool:
        biller = getattr(request, "biller", None)
        if isinstance(request.auth, ApiKey):
            return biller is not None and request.auth.biller_id == biller.pk
        user = request.user
        if biller is None or user is None or not user.is_authenticated:
            return False
        membership = selectors.membership_for(user=user, biller=biller)
        if membership is None:
            return False
        return request.method in {"GET", "HEAD", "OPTIONS"} or membership.can_write


class TenantAPIView(generics.GenericAPIView):
    """``get_queryset`` filters by ``request.biller``: another tenant's id answers 404 like a missing one.

    Subclasses set ``model`` (or override ``get_base_queryset``) and never
    query tenant rows any other way.
    """

    authentication_classes = [ApiKeyAuthentication, SessionAuthentication]
    permission_classes = [IsTenantMember]
    model: Any = None

    def get_base_queryset(self) -> QuerySet:
        return self.model._default_manager.all()

    def get_queryset(self) -> QuerySet:
        biller = getattr(self.request, "biller", None)
        if biller is None:  # a tenant view mounted outside the tenant URLconf: fail closed
            return self.get_base_queryset().none()
        return self.get_base_queryset().filter(biller=biller)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        # PostgreSQL text cannot hold NUL: a query parameter or path part with one is a 400 here, not a
        # failed query (request bodies are checked by their serializers' fields)
        for name, values in request.query_params.lists():
            if "\x00" in name or any("\x00" in value for value in values):
                raise ValidationFailed({name.replace("\x00", ""): [_("must not contain NUL characters")]})
        for name, value in kwargs.items():
            if isinstance(value, str) and "\x00" in value:
                raise ValidationFailed({name: [_("must not contain NUL characters")]})

    @property
    def biller(self) -> Biller:
        """The tenant of this request (the middleware resolved it; the permission checked it)."""
        return self.request._request.biller  # type: ignore[attr-defined]

    def get_object_by_pk(self, pk: Any) -> Any:
        """The tenant's object with this id; 404 for a missing one and for another tenant's alike."""
        obj = self.get_queryset().filter(pk=pk).first()
        if obj is None:
            raise Http404
        return obj
