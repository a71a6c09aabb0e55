"""Console login security: one login-attempt table for the portal and the console (lockout), the
console's TOTP second factor with recovery codes, and a biller's choice to require it of operators."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0011_payment_requests_and_balances"),
    ]

    operations = [
        migrations.RenameModel(old_name="PortalLoginAttempt", new_name="LoginAttempt"),
        migrations.AddField(
            model_name="loginattempt",
            name="realm",
            field=models.CharField(
                choices=[("portal", "Customer portal"), ("console", "Console")],
                default="portal",
                max_length=8,
            ),
        ),
        migrations.AlterField(
            model_name="loginattempt",
            name="biller",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="billing.biller",
            ),
        ),
        migrations.AddIndex(
            model_name="loginattempt",
            index=models.Index(
                condition=models.Q(("realm", "console")),
                fields=["login", "created_at"],
                name="console_attempt_login",
            ),
        ),
        migrations.AddConstraint(
            model_name="loginattempt",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("biller__isnull", False), ("realm", "portal")),
                    models.Q(("biller__isnull", True), ("realm", "console")),
                    _connector="OR",
                ),
                name="login_attempt_realm_matches_biller",
            ),
        ),
        migrations.AddField(
            model_name="biller",
            name="console_totp_for_operators",
            field=models.BooleanField(default=False, verbose_name="operators need two-step verification"),
        ),
        migrations.CreateModel(
            name="ConsoleTwoFactor",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("secret", models.CharField(max_length=64)),
                ("enabled_at", models.DateTimeField(blank=True, null=True)),
                ("last_step", models.BigIntegerField(blank=True, null=True)),
                ("recovery_hashes", models.JSONField(blank=True, default=list)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="console_two_factor",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
        ),
    ]
