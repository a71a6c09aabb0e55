"""Customer portal services, by subject: who sees and pays what (``access``), accounts and
self-registration (``accounts``), invitations (``invitations``), two-step verification
(``two_factor``) and approvals and chosen amounts (``invoices``).

Every write is a service: keyword-only, taking the biller explicitly, one transaction, one audit
entry, e-mail enqueued after commit. Everything public is importable from here too; payeasy's paying
code imports ``billing.portal.services.can_pay`` (and ``numbers_visibility``) by this path.
"""

from billing.portal.services import access, accounts, invitations, invoices, two_factor
from billing.portal.services.access import *  # noqa: F403
from billing.portal.services.accounts import *  # noqa: F403
from billing.portal.services.invitations import *  # noqa: F403
from billing.portal.services.invoices import *  # noqa: F403
from billing.portal.services.two_factor import *  # noqa: F403

# each module's public names (its __all__), importable from here too
__all__: list[str] = []
__all__ += access.__all__
__all__ += accounts.__all__
__all__ += invitations.__all__
__all__ += invoices.__all__
__all__ += two_factor.__all__
