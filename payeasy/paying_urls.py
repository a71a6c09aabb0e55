"""The 情報リンク pages of the customer portal (payeasy.paying), to include in the portal's namespace:

    path("", include("payeasy.paying_urls"))

``invoices/<pk>/pay/`` (``pay``) is the bank chooser, ``invoices/<pk>/pay/<bank_code>/``
(``pay_handoff``) the hand-off page. The portal's ``invoice_detail`` (same namespace) is the return page.
"""

from django.urls import path

from payeasy import paying

urlpatterns = [
    path("invoices/<int:pk>/pay/", paying.BankChooserView.as_view(), name=paying.CHOOSER_URL_NAME),
    path(
        "invoices/<int:pk>/pay/<str:bank_code>/", paying.HandoffView.as_view(), name=paying.HANDOFF_URL_NAME
    ),
]
