"""The customer portal: per-biller customer accounts and the pages a biller's customers use.

Mounted in the tenant URLconf at ``my/`` with the namespace ``portal``. Every page inherits
``billing.portal.views.PortalView``: the tenant (``request.biller``) and the logged-in customer
filter every query, so another biller's or another customer's invoice answers 404.
"""
