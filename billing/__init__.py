"""The tenant (収納企業) and its people, customers, invoices, the tenant console and its API."""
