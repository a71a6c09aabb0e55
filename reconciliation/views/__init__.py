"""The tenant console's reconciliation pages: one module per area, each with its ``urlpatterns``."""
