"""Reconciliation's API operations (included under api/v1/ by config.urls_tenant)."""
