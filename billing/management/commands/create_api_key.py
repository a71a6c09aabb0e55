from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing import services
from billing.errors import ValidationFailed
from billing.models import Biller


class Command(BaseCommand):
    help = "Create a REST API key for a biller and print it once (only its hash is stored)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--biller", required=True, help="収納機関コード (8 digits) or portal slug")
        parser.add_argument("--name", required=True, help="what the key is for, e.g. 'billing system'")

    def handle(self, *args: object, biller: str, name: str, **options: object) -> None:
        from billing.tenancy import bind_cross_tenant

        bind_cross_tenant("command")  # a command is not a tenant's request
        found = (
            Biller.objects.filter(biller_code=biller).first() or Biller.objects.filter(slug=biller).first()
        )
        if found is None:
            raise CommandError(f"--biller: no biller with code or slug {biller!r}")
        if found.is_suspended:
            raise CommandError(f"--biller: {found.biller_code} is suspended")
        try:
            key, token = services.api_key_create(actor=None, biller=found, name=name)
        except ValidationFailed as exc:
            raise CommandError(f"--name: {exc.errors['name'][0]}") from exc
        self.stdout.write(f"API key {key.prefix} for {found.biller_code} {found.legal_name} ({key.name}):")
        self.stdout.write(token)
        self.stdout.write("Store it now: it cannot be shown again.")
