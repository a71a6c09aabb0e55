"""The one base every tenant API view inherits (it owns the tenant filter: ``billing.scoping``), and what
the API's views share: the cursor pages, the error responses of the schema, the Idempotency-Key header
and the input check."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter
from rest_framework import generics
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import NotFound
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from billing import selectors
from billing.api.auth import ApiKeyAuthentication
from billing.api.serializers import ErrorEnvelopeDoc
from billing.errors import ValidationFailed
from billing.models import ApiKey, Biller, Customer
from billing.pagination import BadCursor, cursor_value
from billing.scoping import TenantScopedMixin

IDEMPOTENCY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="同じキーと同じ本文の再送は保存済みの応答を返します（24時間、テナントごと）。"
    "The same key with the same body replays the stored response (24 h, per tenant).",
)
ERRORS = {
    400: ErrorEnvelopeDoc,
    401: ErrorEnvelopeDoc,
    403: ErrorEnvelopeDoc,
    404: ErrorEnvelopeDoc,
    409: ErrorEnvelopeDoc,
    422: ErrorEnvelopeDoc,
}


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


class TenantAPIView(TenantScopedMixin, generics.GenericAPIView):
    """``get_queryset``/``get_object`` are ``TenantScopedMixin``'s: filtered by ``request.biller``, so
    another tenant's id answers 404 like a missing one. Subclasses set ``model`` (and narrow with
    ``scoped_queryset``) and never query tenant rows any other way.
    """

    authentication_classes = [ApiKeyAuthentication, SessionAuthentication]
    permission_classes = [IsTenantMember]
    model: Any = None

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

    def customer_for(self, reference: str) -> Customer:
        """The tenant's customer with this code (or id); a 400 on the ``customer`` field if none."""
        qs = Customer.objects.for_biller(self.biller)
        found = qs.filter(code=reference).first()
        if found is None and reference.isdigit():
            found = qs.filter(pk=int(reference)).first()
        if found is None:
            raise ValidationFailed(
                {"customer": [_("no customer %(ref)r for this biller") % {"ref": reference}]}
            )
        return found


def validated(serializer_class: type, data: Any, **kwargs: Any) -> dict[str, Any]:
    """``data`` checked by the input serializer: its validated data, or the 400 of its errors."""
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class ListPagination(CursorPagination):
    """Cursor pages. A cursor is client input: one this API did not give out (unreadable, or a position
    that is not a value of the sort column: ``billing.pagination.cursor_value``) is a 400 in the one error
    shape, never a query that fails."""

    page_size = 50
    max_page_size = 500
    page_size_query_param = "page_size"

    def get_ordering(self, request: Request, queryset: QuerySet, view: Any) -> tuple[str, ...]:
        return tuple(str(field) for field in queryset.query.order_by) or ("-id",)

    def get_page_size(self, request: Request) -> int:
        """``page_size`` is 1 to 500 when given; anything else is a 400 (not silently the default)."""
        text = request.query_params.get(self.page_size_query_param)
        if text is None:
            return self.page_size
        if not (text.isascii() and text.isdigit() and 1 <= int(text) <= self.max_page_size):
            raise ValidationFailed(
                {
                    self.page_size_query_param: [
                        _("must be a whole number from 1 to %(max)d") % {"max": self.max_page_size}
                    ]
                }
            )
        return int(text)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_page_size}
        return parameters

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any] | None:
        self._model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request: Request) -> Cursor | None:
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise bad_cursor() from None
        if cursor is not None and cursor.position is not None:
            try:
                cursor_value(self._model._meta.get_field(self.ordering[0].lstrip("-")), cursor.position)
            except BadCursor:
                raise bad_cursor() from None
        return cursor


def bad_cursor() -> ValidationFailed:
    return ValidationFailed(
        {"cursor": [_("this cursor was not given out by this API: start again from the first page")]}
    )
