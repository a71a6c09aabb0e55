"""The pay-later page (payeasy.paylater), mounted at ``pay/`` in the tenant URLconf (config/urls_tenant)."""

from django.urls import path

from payeasy import paylater

app_name = "paylater"

urlpatterns = [
    path("<str:token>/", paylater.PayLaterPageView.as_view(), name="page"),
    path("<str:token>/status/", paylater.paylater_status, name="status"),
    path("<str:token>/events/", paylater.paylater_events, name="events"),
]
