"""Reconciliation's exceptions, under the project's base (billing.errors)."""

from __future__ import annotations

from billing.errors import Conflict


class ActionRefused(Conflict):
    """An action that does not apply to the finding as it stands (closed, already open, wrong kind)."""

    code = "action_refused"
