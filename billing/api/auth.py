"""API-key authentication for the tenant API: ``Authorization: Bearer pe_…``."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from billing.models import ApiKey
from billing.services.api_keys import api_key_authenticate


class ApiKeyPrincipal:
    """Who the request is, when it came with an API key: the key, on behalf of its biller."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    realm = "api"

    def __init__(self, key: ApiKey) -> None:
        self.key = key

    def __str__(self) -> str:
        return f"api-key:{self.key.prefix}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[ApiKeyPrincipal, ApiKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme != self.keyword or not token.strip():
            raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer <API key>'.")
        key = api_key_authenticate(token=token.strip())
        biller = getattr(request._request, "biller", None)
        if key is None or biller is None or key.biller_id != biller.pk:
            # a key of another tenant is as unknown here as a wrong one
            raise exceptions.AuthenticationFailed("The API key is not valid for this biller.")
        return ApiKeyPrincipal(key), key

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


def actor_of(request: Any) -> Any:
    """What services record as the actor: the API key, or the console user."""
    return request.auth if isinstance(request.auth, ApiKey) else request.user


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """The API key in the OpenAPI schema: ``Authorization: Bearer pe_…`` (HTTP bearer)."""

    target_class = ApiKeyAuthentication
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "API key issued in the tenant console (APIキー). 'Authorization: Bearer pe_…'",
        }
