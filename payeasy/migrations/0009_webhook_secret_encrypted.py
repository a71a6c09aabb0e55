"""Webhook signing secrets wrapped at rest; the delivery log keeps no body of a failed answer.

1. ``secret`` and ``previous_secret`` are encrypted in place with ``payeasy.keywrap`` (AES-256-GCM under
   the first key-encryption key of PAYEASY_HANDOFF_KEK, bound to the endpoint's id): the columns grow
   to 200 characters. A value already wrapped is left alone, so running it again changes nothing.
   Reversible: going back decrypts them (which needs a key-encryption key that opens them).
2. Response bodies kept in the log before: a body of an answer that was not 2xx is blanked (it may be
   what an internal host answered, and the log no longer shows it); a 2xx body is cut to its first 200
   characters, as new ones are. This part is not undone when migrating back: the text is gone.

It imports ``payeasy.keywrap`` (no models), the one implementation of the wrapped format.
"""

from django.db import migrations, models
from django.db.models import Value
from django.db.models.functions import Concat, Left, Length

EXCERPT = 200
TRUNCATED = " … [truncated]"


def encrypt_secrets(apps, schema_editor):
    from payeasy import keywrap

    Endpoint = apps.get_model("payeasy", "WebhookEndpoint")
    for row in Endpoint.objects.order_by("pk").only("pk", "secret", "previous_secret").iterator():
        aad = keywrap.webhook_secret_aad(row.pk)
        changes = {
            name: keywrap.wrap(value.encode("utf-8"), aad)
            for name in ("secret", "previous_secret")
            if (value := getattr(row, name)) and not keywrap.is_wrapped(value)
        }
        if changes:
            Endpoint.objects.filter(pk=row.pk).update(**changes)


def decrypt_secrets(apps, schema_editor):
    from payeasy import keywrap

    Endpoint = apps.get_model("payeasy", "WebhookEndpoint")
    for row in Endpoint.objects.order_by("pk").only("pk", "secret", "previous_secret").iterator():
        aad = keywrap.webhook_secret_aad(row.pk)
        changes = {}
        for name in ("secret", "previous_secret"):
            value = getattr(row, name)
            if value and keywrap.is_wrapped(value):
                try:
                    changes[name] = keywrap.unwrap(value, aad).decode("utf-8")
                except keywrap.Unreadable:
                    raise RuntimeError(
                        f"webhook endpoint {row.pk}: its {name} does not open with the configured "
                        "key-encryption keys (PAYEASY_HANDOFF_KEK); configure the key it was wrapped with"
                    ) from None
        if changes:
            Endpoint.objects.filter(pk=row.pk).update(**changes)


def trim_logged_bodies(apps, schema_editor):
    Attempt = apps.get_model("payeasy", "WebhookAttempt")
    Delivery = apps.get_model("payeasy", "WebhookDelivery")
    Attempt.objects.exclude(response_status__range=(200, 299)).exclude(response_body="").update(
        response_body=""
    )
    Delivery.objects.exclude(last_response_status__range=(200, 299)).exclude(last_response_body="").update(
        last_response_body=""
    )
    Attempt.objects.annotate(n=Length("response_body")).filter(
        response_status__range=(200, 299), n__gt=EXCERPT
    ).update(response_body=Concat(Left("response_body", EXCERPT), Value(TRUNCATED)))
    Delivery.objects.annotate(n=Length("last_response_body")).filter(
        last_response_status__range=(200, 299), n__gt=EXCERPT
    ).update(last_response_body=Concat(Left("last_response_body", EXCERPT), Value(TRUNCATED)))


class Migration(migrations.Migration):
    dependencies = [
        ("payeasy", "0008_notice_suspect"),
    ]

    operations = [
        migrations.AlterField(
            model_name="webhookendpoint",
            name="secret",
            field=models.CharField(max_length=200),
        ),
        migrations.AlterField(
            model_name="webhookendpoint",
            name="previous_secret",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.RunPython(encrypt_secrets, decrypt_secrets),
        migrations.RunPython(trim_logged_bodies, migrations.RunPython.noop),
    ]
