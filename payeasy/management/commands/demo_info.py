from django.conf import settings
from django.core.management.base import BaseCommand

from billing import totp
from billing.balances_demo import seed_balance_demo
from billing.models import Biller
from billing.portal.demo import seed_portal_demo
from payeasy.demo import DEMO_BILLERS, DEMO_PASSWORD, DEMO_TOTP_SECRET, STAFF_EMAIL


class Command(BaseCommand):
    help = "Print where to click in the running demo and the demo logins."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--base-url", default=settings.PORTAL_BASE_URL)
        parser.add_argument(
            "--code",
            action="store_true",
            help="print only the current two-step verification code of the demo",
        )

    def handle(self, *args: object, base_url: str, code: bool = False, **options: object) -> None:
        from billing.tenancy import bind_cross_tenant

        bind_cross_tenant("command")  # a command is not a tenant's request
        if code:
            self.stdout.write(totp.totp(DEMO_TOTP_SECRET).now())
            return
        base = base_url.rstrip("/")
        lines = [
            "",
            "Pay-easy billing portal — demo",
            "=" * 60,
            f"Log in:              {base}/accounts/login/",
            f"iDC staff console:   {base}/staff/      {STAFF_EMAIL} / {DEMO_PASSWORD}",
            f"Two-step code:       staff and admins: key {totp.grouped(DEMO_TOTP_SECRET)} in an",
            "                     authenticator app, or the current code:",
            "                     DJANGO_DEBUG=1 .venv/bin/python manage.py demo_info --code",
        ]
        for demo in DEMO_BILLERS:
            slug = demo.data["slug"]
            lines += [
                f"{demo.data['legal_name']} ({demo.data['biller_code']})",
                f"  tenant console:    {base}/b/{slug}/console/",
                f"  admin:             {demo.admin_email} / {DEMO_PASSWORD}",
                f"  operator (read):   {demo.operator_email} / {DEMO_PASSWORD}",
                f"  customer portal:   {base}/b/{slug}/my/",
            ]
            biller = Biller.objects.filter(slug=slug).first()
            if biller is not None:
                for login in seed_portal_demo(biller):  # idempotent: reads the logins back
                    lines.append(f"    {login.role:<9}        {login.email} / {login.password}")
                paylater = seed_balance_demo(biller)
                lines.append(f"  pay-later order:   {paylater.paylater_url}")
        if settings.PAYEASY_SANDBOX_BANK:
            from payeasy.sandbox.bank import played_banks
            from payeasy.sandbox.forms import DEMO_LOGIN
            from payeasy.sandbox.forms import DEMO_PASSWORD as BANK_PASSWORD

            lines += [
                f"Sandbox bank {settings.PAYEASY_SANDBOX_BANK_CODE} (情報リンク and ATM, no real money)",
                f"  internet banking:  {base}/sandbox-bank/      {DEMO_LOGIN} / {BANK_PASSWORD}",
                f"  ATM:               {base}/sandbox-bank/atm/",
            ]
            played = ", ".join(f"{b.display_name} {b.code}" for b in played_banks())
            if played:
                lines.append(f"  also plays:        {played} (情報リンク)")
        lines += [
            f"MPN line:            commserver on {settings.COMMSERVER_HOST}:{settings.COMMSERVER_PORT}; "
            "`make pay` pays a demo bill over it",
            "E-mails (invitations, bills) are printed in the 'worker' log below.",
            "=" * 60,
            "",
        ]
        self.stdout.write("\n".join(lines))
