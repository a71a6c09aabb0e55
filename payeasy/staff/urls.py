from django.urls import path

from payeasy.staff import handoff_views, operations_views, teller_views, views

app_name = "staff"

urlpatterns = [
    path("", views.BillerListView.as_view(), name="biller_list"),
    path("billers/new/", views.BillerOnboardView.as_view(), name="biller_onboard"),
    path("billers/<int:pk>/", views.BillerDetailView.as_view(), name="biller_detail"),
    path("billers/<int:pk>/edit/", views.BillerEditView.as_view(), name="biller_edit"),
    path("billers/<int:pk>/banks/", views.ContractsEditView.as_view(), name="contracts_edit"),
    path("billers/<int:pk>/status/", views.BillerStatusView.as_view(), name="biller_status"),
    path("billers/<int:pk>/invite/", views.BillerInviteView.as_view(), name="biller_invite"),
    path("audit/", views.AuditListView.as_view(), name="audit_list"),
    path("operations/", operations_views.OperationsView.as_view(), name="operations"),
    path("operations/messages/", operations_views.MessageSearchView.as_view(), name="message_search"),
    path(
        "operations/messages/<int:pk>/", operations_views.MessageDetailView.as_view(), name="message_detail"
    ),
    path("handoff/", handoff_views.HandoffListView.as_view(), name="handoff_list"),
    path("handoff/new/", handoff_views.HandoffCreateView.as_view(), name="handoff_create"),
    path("handoff/<int:pk>/", handoff_views.HandoffEditView.as_view(), name="handoff_edit"),
    path("handoff/<int:pk>/keys/", handoff_views.HandoffKeyCreateView.as_view(), name="handoff_key_create"),
    path(
        "handoff/<int:pk>/keys/<int:key_pk>/retire/",
        handoff_views.HandoffKeyRetireView.as_view(),
        name="handoff_key_retire",
    ),
    path("teller-files/", teller_views.TellerFileListView.as_view(), name="teller_files"),
    path("teller-files/<int:pk>/", teller_views.TellerFileDetailView.as_view(), name="teller_file"),
]
