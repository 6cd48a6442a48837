from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.demo import DEMO_ADMIN_PASSWORD, DEMO_ADMIN_USERNAME, DEMO_SITE_API_KEY, demo_data_load
from staff.demo import DEMO_STAFF, DEMO_STAFF_PASSWORD


class Command(BaseCommand):
    help = "Load demo data and a demo superuser (idempotent), then print how to log in."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--force", action="store_true", help="Run even with DEBUG off (never in production).")

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG and not options["force"]:
            raise CommandError("Demo data has a known password: refusing with DEBUG off (use --force).")
        summary = demo_data_load()
        self.stdout.write(
            f"Demo data: {len(summary.created)} object(s) created"
            + (f" ({', '.join(summary.created)})" if summary.created else " (already present)")
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Admin: http://127.0.0.1:8000/admin/  login: {DEMO_ADMIN_USERNAME}  password: {DEMO_ADMIN_PASSWORD}"
            )
        )
        users = ", ".join(f"{username} ({role})" for username, role, _stores in DEMO_STAFF)
        self.stdout.write(f"Staff, password {DEMO_STAFF_PASSWORD!r}: {users}; the seller works in Showroom Khimki")
        self.stdout.write(f"API docs: http://127.0.0.1:8000/api/docs/  demo site API key: {DEMO_SITE_API_KEY}")
