from django.urls import path

from billing.api import views

app_name = "api"

urlpatterns = [
    path("customers/", views.CustomerListApi.as_view(), name="customer_list"),
    path("customers/<int:pk>/", views.CustomerDetailApi.as_view(), name="customer_detail"),
]
