"""Every write of the billing app. Each service is the transaction boundary and writes the audit entry.

The modules split by subject (billers, members, invitations, customers, API keys, invoices, payment
requests, balances, imports; audit, validation and tokens are what they share); everything public is
importable from here too. Prefer naming the module when importing.
"""

from billing.services.api_keys import *  # noqa: F403
from billing.services.audit import *  # noqa: F403
from billing.services.balances import *  # noqa: F403
from billing.services.billers import *  # noqa: F403
from billing.services.customers import *  # noqa: F403
from billing.services.imports import *  # noqa: F403
from billing.services.invitations import *  # noqa: F403
from billing.services.invoices import *  # noqa: F403
from billing.services.members import *  # noqa: F403
from billing.services.payment_requests import *  # noqa: F403
from billing.services.tokens import *  # noqa: F403
from billing.services.validation import *  # noqa: F403
