"""Thin Celery tasks of the billing app: take ids, load, call a service or send."""

from __future__ import annotations

from celery import shared_task
from django.contrib.sessions.models import Session
from django.utils import timezone

from billing import notifications


@shared_task(
    name="billing.tasks.invitation_send", autoretry_for=(OSError,), retry_backoff=True, max_retries=8
)
def invitation_send(invitation_id: int, token: str) -> None:
    notifications.invitation_email_send(invitation_id=invitation_id, token=token)


@shared_task(name="billing.tasks.sessions_clear")
def sessions_clear() -> int:
    """Delete expired sessions (what ``manage.py clearsessions`` does), run by beat."""
    deleted, _ = Session.objects.filter(expire_date__lt=timezone.now()).delete()
    return deleted


@shared_task(name="billing.tasks.kept_answers_prune")
def kept_answers_prune() -> int:
    """Delete the kept answers of pages past their time (billing.page_replay never gives them), by beat."""
    from billing.models import KeptAnswer

    deleted, _ = KeptAnswer.objects.cross_tenant("worker").filter(kept_until__lt=timezone.now()).delete()
    return deleted


@shared_task(name="billing.tasks.customer_changes_compact")
def customer_changes_compact() -> int:
    """Fold each customer's change counters into one (billing.page_cache.changes_compact), by beat."""
    from billing import page_cache

    return page_cache.changes_compact()


@shared_task(
    name="billing.tasks.invoice_published_notify", autoretry_for=(OSError,), retry_backoff=True, max_retries=8
)
def invoice_published_notify(invoice_ids: list[int]) -> int:
    return notifications.invoices_published_email_send(invoice_ids=invoice_ids)


@shared_task(name="billing.tasks.due_reminders_send")
def due_reminders_send() -> int:
    return notifications.due_reminders_send()


@shared_task(name="billing.tasks.import_job_run")
def import_job_run(job_id: int) -> None:
    from billing.services.imports import import_job_run as run

    run(job_id=job_id)


@shared_task(name="billing.tasks.import_notify")
def import_notify(job_id: int) -> int:
    from billing.services.imports import import_notify_enqueue

    return import_notify_enqueue(job_id=job_id)


@shared_task(
    name="billing.tasks.portal_invitation_send", autoretry_for=(OSError,), retry_backoff=True, max_retries=8
)
def portal_invitation_send(invitation_id: int, token: str) -> None:
    from billing.portal import notifications as portal_notifications

    portal_notifications.invitation_email_send(invitation_id=invitation_id, token=token)


@shared_task(
    name="billing.tasks.portal_password_reset_send",
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=8,
)
def portal_password_reset_send(user_id: int, url: str) -> None:
    from billing.portal import notifications as portal_notifications

    portal_notifications.password_reset_email_send(user_id=user_id, url=url)


@shared_task(name="billing.tasks.portal_login_attempts_prune")
def portal_login_attempts_prune() -> int:
    from billing.portal.throttling import attempts_prune

    return attempts_prune()


@shared_task(
    name="billing.tasks.payment_request_notify", autoretry_for=(OSError,), retry_backoff=True, max_retries=8
)
def payment_request_notify(invoice_id: int) -> bool:
    return notifications.payment_request_email_send(invoice_id=invoice_id)


@shared_task(name="billing.tasks.receipts_send", autoretry_for=(OSError,), retry_backoff=True, max_retries=8)
def receipts_send(payment_ids: list[int]) -> int:
    from billing.services.receipts import receipts_send as send

    return send(payment_ids=payment_ids)
