"""Customer API, read side (the invoice issue adds writes). One view per operation."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from billing.api.base import TenantAPIView
from billing.models import Customer


class CustomerOutput(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = [
            "id",
            "code",
            "name",
            "name_kana",
            "email",
            "kind",
            "postal_code",
            "address",
            "status",
            "created_at",
        ]


class CustomerListApi(TenantAPIView):
    model = Customer

    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        rows = CustomerOutput(page if page is not None else self.get_queryset()[:500], many=True).data
        return Response({"results": rows})


class CustomerDetailApi(TenantAPIView):
    model = Customer

    def get(self, request: Request, pk: int) -> Response:
        return Response(CustomerOutput(self.get_object_or_404(pk)).data)

    def get_object_or_404(self, pk: int) -> Customer:
        from django.shortcuts import get_object_or_404

        return get_object_or_404(self.get_queryset(), pk=pk)
