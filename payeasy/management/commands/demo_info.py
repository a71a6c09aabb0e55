from django.conf import settings
from django.core.management.base import BaseCommand

from payeasy.demo import DEMO_BILLERS, DEMO_PASSWORD, STAFF_EMAIL


class Command(BaseCommand):
    help = "Print where to click in the running demo and the demo logins."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--base-url", default=settings.PORTAL_BASE_URL)

    def handle(self, *args: object, base_url: str, **options: object) -> None:
        base = base_url.rstrip("/")
        lines = [
            "",
            "Pay-easy billing portal — demo",
            "=" * 60,
            f"Log in:              {base}/accounts/login/",
            f"iDC staff console:   {base}/staff/      {STAFF_EMAIL} / {DEMO_PASSWORD}",
        ]
        for demo in DEMO_BILLERS:
            slug = demo.data["slug"]
            lines += [
                f"{demo.data['legal_name']} ({demo.data['biller_code']})",
                f"  tenant console:    {base}/b/{slug}/console/",
                f"  admin:             {demo.admin_email} / {DEMO_PASSWORD}",
                f"  operator (read):   {demo.operator_email} / {DEMO_PASSWORD}",
            ]
        lines += ["Invitation e-mails are printed in the 'worker' log below.", "=" * 60, ""]
        self.stdout.write("\n".join(lines))
