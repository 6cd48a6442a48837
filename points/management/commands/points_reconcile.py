from django.core.management.base import BaseCommand, CommandError

from points.services import points_reconcile


class Command(BaseCommand):
    help = "Check every points ledger invariant (all accounts, or --account ID ...); exit 1 on any discrepancy."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--account", type=int, nargs="*", dest="accounts")

    def handle(self, *args, **options) -> None:
        problems = points_reconcile(account_ids=options["accounts"])
        for problem in problems:
            self.stderr.write(f"{problem.check} #{problem.object_id}: {problem.detail}")
        if problems:
            raise CommandError(f"{len(problems)} discrepancies")
        self.stdout.write(self.style.SUCCESS("ledger consistent"))
