from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.errors import InvalidTransition, NotFound
from billing.models import User, console_login
from billing.services import two_factor


class Command(BaseCommand):
    help = (
        "Reset a console user's two-step verification (lost phone and recovery codes). The user sets it up "
        "again at the next login. Audited with the iDC staff member who asked for it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email", help="the console login (e-mail) of the user to reset")
        parser.add_argument("--by", required=True, help="the e-mail of the iDC staff member doing it")
        parser.add_argument("--reason", default="", help="why, for the audit trail (e.g. a ticket number)")

    def handle(self, *args: object, email: str, by: str, reason: str, **options: object) -> None:
        user = User.objects.filter(login=console_login(email), realm=User.Realm.CONSOLE).first()
        if user is None:
            raise CommandError(f"no console user {email!r}")
        actor = User.objects.filter(login=console_login(by), realm=User.Realm.CONSOLE, is_active=True).first()
        if actor is None or not actor.is_idc_staff:
            raise CommandError(f"--by: {by!r} is not an active iDC staff member")
        try:
            two_factor.reset(actor=actor, user=user, reason=reason)
        except (InvalidTransition, NotFound) as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"Two-step verification of {user.login} reset; they set it up at their next login.")
