from django.core.management.base import BaseCommand

from payeasy.demo import seed_demo


class Command(BaseCommand):
    help = "Load the deterministic demo data (idempotent): staff, two billers, admins, banks, customers."

    def handle(self, *args: object, **options: object) -> None:
        from billing.tenancy import bind_cross_tenant

        bind_cross_tenant("command")  # a command is not a tenant's request
        billers = seed_demo()
        self.stdout.write(self.style.SUCCESS(f"Demo data ready: {', '.join(b.slug for b in billers)}"))
