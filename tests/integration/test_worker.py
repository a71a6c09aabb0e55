"""Invitation e-mails leave through a real Celery worker process, on Redis and on the embedded broker."""

from __future__ import annotations

import email
import email.policy
import time
from pathlib import Path

import pytest

from billing import services
from tests.factories import make_biller, make_user

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def read_mails(folder: Path) -> list[str]:
    """Each file of Django's file backend holds messages; return their headers and decoded bodies."""
    out = []
    for path in sorted(folder.glob("*.log")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        out.append(
            f"To: {message['To']}\nSubject: {message['Subject']}\n\n{body.get_content() if body else ''}"
        )
    return out


def wait_for_mail(folder: Path, needle: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for text in read_mails(folder):
            if needle in text:
                return text
        time.sleep(0.2)
    raise AssertionError(f"no e-mail containing {needle!r} in {timeout} s; files: {list(folder.iterdir())}")


@pytest.mark.parametrize("celery_broker", ["filesystem", "redis"], indirect=True)
def test_worker_process_sends_the_invitation(celery_broker, worker_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mail_dir = tmp_path / "mail"
    mail_dir.mkdir()
    worker = worker_factory(
        DJANGO_EMAIL_BACKEND="file", DJANGO_EMAIL_FILE_PATH=str(mail_dir), **celery_broker
    )
    staff = make_user("staff@idc.test", is_idc_staff=True)
    biller = make_biller(status="onboarding")
    _, token = services.invitation_create(actor=staff, biller=biller, email="boss@new.jp", role="admin")
    try:
        text = wait_for_mail(mail_dir, token)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nworker log:\n{worker.output()}") from None
    assert "To: boss@new.jp" in text
    assert f"/accounts/invitations/{token}/" in text
    assert "billing.tasks.invitation_send" in worker.output()


@pytest.mark.parametrize("celery_broker", ["redis"], indirect=True)
def test_a_revoked_invitation_is_not_sent_even_if_queued(
    celery_broker, worker_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """The task re-reads the invitation: what was queued before a revocation sends nothing."""
    from django.db import transaction

    mail_dir = tmp_path / "mail"
    mail_dir.mkdir()
    staff = make_user("staff@idc.test", is_idc_staff=True)
    biller = make_biller()
    with transaction.atomic():
        invitation, token = services.invitation_create(
            actor=staff, biller=biller, email="x@new.jp", role="admin"
        )
    services.invitation_revoke(actor=staff, invitation=invitation)
    _, later = services.invitation_create(actor=staff, biller=biller, email="y@new.jp", role="admin")
    worker_factory(DJANGO_EMAIL_BACKEND="file", DJANGO_EMAIL_FILE_PATH=str(mail_dir), **celery_broker)
    wait_for_mail(mail_dir, later)  # the queue has drained up to the second invitation
    assert not any(token in text for text in read_mails(mail_dir))
