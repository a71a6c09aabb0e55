"""The sandbox bank, mounted at /sandbox-bank/ when settings.PAYEASY_SANDBOX_BANK is true."""

from django.urls import path

from payeasy.sandbox import views

app_name = "sandbox_bank"

urlpatterns = [
    path("", views.home, name="home"),
    path("entry/", views.entry, name="entry"),
    path("entry/<str:bank_code>/", views.entry, name="entry_as"),  # playing another bank (payeasy.demo)
    path("login/", views.login, name="login"),
    path("pay/", views.pay, name="pay"),
    path("atm/", views.atm, name="atm"),
    path("atm/pay/", views.atm_pay, name="atm_pay"),
]
