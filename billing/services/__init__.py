"""Every write of the billing app. Each service is the transaction boundary and writes the audit entry.

The modules split by subject; everything public is importable from here.
"""

from billing.services.balances import *  # noqa: F403
from billing.services.core import *  # noqa: F403
from billing.services.core import _full_clean  # noqa: F401  (payeasy reuses it)
from billing.services.imports import *  # noqa: F403
from billing.services.invoices import *  # noqa: F403
from billing.services.payment_requests import *  # noqa: F403
