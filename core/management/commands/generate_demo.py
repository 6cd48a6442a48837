"""Fill a database with realistic demo data in bulk, fast: the big tables of issue 7's admin benchmark.

    manage.py generate_demo --customers 1000000          # 1M customers, 5M order lines, 10M journal entries

Customers (unique E.164 phones +79XXXXXXXXX, names, emails, cards, registration stores and channels,
memberships), one points account each with lots in every state and the journal entries and allocations that
made them (``points_reconcile`` is clean), orders with lines over two years across ``--stores`` stores and the
web, app and till channels, and tier memberships with their history. Exactly ``--lines-per-customer`` lines and
``--entries-per-customer`` journal entries per customer; orders and lots vary. Stores ``gen-store-NN`` and
channels ``gen-*`` are created if missing.

PostgreSQL: COPY in batches of ``--batch`` customers (one transaction each) from ``--workers`` processes, then
VACUUM ANALYZE of the filled tables (``--no-vacuum`` for ANALYZE only). SQLite: batched INSERTs, for small counts.
Refuses a database that already holds customers unless ``--append``. Progress goes to stderr.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError, connection

from core.generate.columns import TABLES
from core.generate.loader import ProgressBar, ids_reserve, run_in_process, run_in_workers
from core.generate.rows import Plan
from core.generate.vocab import CITIES
from customers.models import Customer
from integrations.models import Channel, Store
from points.models import LotKind, LotLifetime
from programmes.models import Programme

SQLITE_LIMIT = 200_000
CHANNELS = {
    "showroom": ("gen-showroom", "Showroom tills (generated)", Channel.Kind.SHOWROOM_POS),
    "site": ("gen-site", "Web site (generated)", Channel.Kind.SITE),
    "app": ("gen-app", "Mobile app (generated)", Channel.Kind.MOBILE_APP),
}


class Command(BaseCommand):
    help = "Generate demo customers, points, orders and tiers in bulk (COPY on PostgreSQL), with a progress bar."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--customers", type=int, default=2000)
        parser.add_argument("--lines-per-customer", type=int, default=5, help="order lines per customer (exact)")
        parser.add_argument(
            "--entries-per-customer", type=int, default=10, help="points journal entries per customer (exact)"
        )
        parser.add_argument("--stores", type=int, default=20, help="stores the customers and orders are spread over")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--batch", type=int, default=5000, help="customers per batch (one transaction)")
        parser.add_argument("--workers", type=int, default=2, help="PostgreSQL: processes writing batches")
        parser.add_argument("--append", action="store_true", help="add to a database that already holds customers")
        parser.add_argument("--no-vacuum", dest="vacuum", action="store_false", help="PostgreSQL: ANALYZE only")
        parser.add_argument(
            "--check-foreign-keys",
            action="store_true",
            help="PostgreSQL: keep the foreign-key triggers on (slower). By default a superuser session skips "
            "them (session_replication_role = replica): the rows are consistent by construction.",
        )

    def handle(self, *args, **options) -> None:
        customers = options["customers"]
        for name in ("customers", "stores", "batch", "workers"):
            if options[name] < 1:
                raise CommandError(f"--{name} must be at least 1.")
        for name in ("lines_per_customer", "entries_per_customer"):
            if options[name] < 0:
                raise CommandError(f"--{name.replace('_', '-')} must not be negative.")
        vendor = connection.vendor
        if vendor not in ("postgresql", "sqlite"):
            raise CommandError(f"generate_demo supports PostgreSQL and SQLite, not {vendor}.")
        if vendor == "sqlite" and customers > SQLITE_LIMIT:
            raise CommandError(f"On SQLite at most {SQLITE_LIMIT:,} customers; use PostgreSQL for more.")
        existing = Customer.objects.count()
        if existing and not options["append"]:
            raise CommandError(
                f"The database {connection.settings_dict['NAME']!r} already holds {existing:,} customers; "
                "refusing to mix demo data into it. Use an empty database, or --append to add to them."
            )
        plan = self._plan(options)
        progress = ProgressBar(customers)
        started = time.monotonic()
        # Workers need their own connections: not from inside a transaction (a test's), whose rows they could not see.
        parallel = options["workers"] > 1 and customers > options["batch"] and not connection.in_atomic_block
        try:
            if vendor == "postgresql" and parallel:
                run_in_workers(plan, options["batch"], options["workers"], options["check_foreign_keys"], progress)
            else:
                run_in_process(plan, options["batch"], options["check_foreign_keys"], progress)
        except (RuntimeError, IntegrityError) as error:
            # E.g. --append next to customers made elsewhere with a phone or card the generator also made.
            raise CommandError(f"generation stopped; the batches written so far are kept.\n{error}") from error
        finally:
            progress.close()
        written = time.monotonic() - started
        self._analyse(options["vacuum"])
        elapsed = time.monotonic() - started
        self.stdout.write(
            f"generated {customers:,} customers, {customers * options['lines_per_customer']:,} order lines, "
            f"{customers * options['entries_per_customer']:,} journal entries ({progress.rows:,} rows) "
            f"in {elapsed:.0f}s (writing {written:.0f}s, {progress.rows / max(written, 1e-9):,.0f} rows/s)"
        )

    def _plan(self, options: dict) -> Plan:
        stores = []
        for number in range(1, options["stores"] + 1):
            city = CITIES[(number - 1) % len(CITIES)]
            store, _ = Store.objects.get_or_create(
                code=f"gen-store-{number:02d}", defaults={"name": f"{city}, шоурум {number}", "city": city}
            )
            stores.append(store.pk)
        channels = {}
        for key, (code, name, kind) in CHANNELS.items():
            channels[key] = Channel.objects.get_or_create(code=code, defaults={"name": name, "kind": kind})[0].pk
        try:
            retail = Programme.objects.select_related("balance_type").get(customer_kind=Programme.CustomerKind.RETAIL)
            b2b = Programme.objects.select_related("balance_type").get(customer_kind=Programme.CustomerKind.B2B)
        except Programme.DoesNotExist:
            raise CommandError("The retail and B2B programmes are missing: run the migrations first.") from None
        tiers = list(retail.tiers.order_by("rank"))
        if len(tiers) < 4:
            raise CommandError("The retail programme needs 4 tiers (basic, silver, gold, platinum).")
        b2b_entry = b2b.tiers.order_by("rank").first()
        welcome = LotLifetime.objects.filter(balance_type=retail.balance_type, kind=LotKind.WELCOME).first()
        if (welcome.lifetime_days if welcome is not None else retail.balance_type.default_lifetime_days) is None:
            raise CommandError("Generated welcome bonuses expire: give the welcome lot kind a lifetime.")
        first_ids = ids_reserve(
            customers=options["customers"],
            lines_per_customer=options["lines_per_customer"],
            entries_per_customer=options["entries_per_customer"],
        )
        assert set(first_ids) == set(TABLES)
        return Plan(
            customers=options["customers"],
            lines_per_customer=options["lines_per_customer"],
            entries_per_customer=options["entries_per_customer"],
            seed=options["seed"],
            now=int(datetime.now(UTC).timestamp()),
            first_ids=first_ids,
            store_ids=tuple(stores),
            channels=channels,
            balance_types={"retail": retail.balance_type_id, "b2b": b2b.balance_type_id},
            programme_id=retail.pk,
            tier_ids=tuple(tier.pk for tier in tiers[:4]),
            tier_rates=tuple(int(tier.earn_rate_percent * 100) for tier in tiers[:4]),
            b2b_rate=int(b2b_entry.earn_rate_percent * 100) if b2b_entry else 500,
            welcome_bonus=int(tiers[0].welcome_bonus),
            welcome_days=welcome.lifetime_days if welcome is not None else retail.balance_type.default_lifetime_days,
            sqlite=connection.vendor == "sqlite",
        )

    def _analyse(self, vacuum: bool) -> None:
        """Fresh planner statistics (the admin's estimated counts read them); VACUUM also sets the visibility map
        and hint bits, which a bulk load leaves for the first reader to do."""
        with connection.cursor() as cursor:
            if connection.vendor != "postgresql":
                cursor.execute("ANALYZE")
                return
            vacuum = vacuum and not connection.in_atomic_block  # VACUUM cannot run in a transaction (tests)
            started = time.monotonic()
            cursor.execute(f"{'VACUUM (ANALYZE)' if vacuum else 'ANALYZE'} {', '.join(TABLES)}")
            self.stderr.write(f"{'vacuum analyze' if vacuum else 'analyze'}: {time.monotonic() - started:.0f}s")
