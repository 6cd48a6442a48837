"""Fill a **benchmark** database with customers, points accounts and lots, fast (PostgreSQL COPY).

Every lot comes with the rows a real accrual would have written — its ``accrue`` journal entry and
allocation — and every account's cached buckets equal its lot and journal sums, so
``points_reconcile`` passes on the result. Lots are active; ``--due-fraction`` of them expired
1 to 30 days ago (due for ``points_expire_due``), the rest expire within ``--days-ahead`` days.

    manage.py points_bulk_generate --accounts 1000000 --lots-per-account 10 --due-fraction 0.1

Refuses to touch a non-empty database unless its name says it is a benchmark or test database
(contains "bench" or "test"), or ``--force``. Progress goes to stderr, one line per batch.
"""

from __future__ import annotations

import io
import random
import sys
import time
from datetime import UTC, datetime, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from customers.models import Customer
from points.models import Account, Allocation, BalanceType, Entry, Lot

DAY = 86400


class Command(BaseCommand):
    help = "Generate customers, points accounts and lots (with their journal) in bulk, for benchmarks."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--accounts", type=int, default=10000)
        parser.add_argument("--lots-per-account", type=int, default=10)
        parser.add_argument("--due-fraction", type=float, default=0.1, help="share of lots already past expiry")
        parser.add_argument("--days-ahead", type=int, default=365, help="other lots expire within this many days")
        parser.add_argument("--min-amount", type=int, default=50)
        parser.add_argument("--max-amount", type=int, default=500)
        parser.add_argument("--balance-type", default="retail")
        parser.add_argument("--batch", type=int, default=10000, help="accounts per COPY batch and commit")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--force", action="store_true", help="run even on a non-empty, non-benchmark database")
        parser.add_argument(
            "--check-foreign-keys",
            action="store_true",
            help="keep foreign-key triggers on (slower). By default a superuser session skips them "
            "(session_replication_role = replica): the rows are consistent by construction.",
        )

    def handle(self, *args, **options) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("points_bulk_generate needs PostgreSQL (it uses COPY).")
        self._refuse_production(options["force"])
        try:
            balance_type = BalanceType.objects.get(code=options["balance_type"])
        except BalanceType.DoesNotExist:
            raise CommandError(f"unknown balance type {options['balance_type']!r}") from None
        total, batch = options["accounts"], max(1, options["batch"])
        rng = random.Random(options["seed"])
        now = datetime.now(UTC).replace(microsecond=0)
        started, done, lots = time.monotonic(), 0, 0
        with connection.cursor() as cursor:
            replica = not options["check_foreign_keys"] and self._is_superuser(cursor)
            if replica:
                cursor.execute("SET session_replication_role = replica")
            try:
                while done < total:
                    size = min(batch, total - done)
                    lots += self._batch(cursor, size, options, balance_type.pk, now, rng)
                    done += size
                    elapsed = time.monotonic() - started
                    rate = lots / elapsed if elapsed else 0
                    eta = (total - done) * elapsed / done
                    sys.stderr.write(
                        f"points_bulk_generate: accounts {done:,}/{total:,} ({100 * done / total:.1f}%), "
                        f"lots {lots:,}, {rate:,.0f} lots/s, elapsed {elapsed:.0f}s, eta {eta:.0f}s\n"
                    )
                    sys.stderr.flush()
            finally:
                if replica:
                    cursor.execute("SET session_replication_role = DEFAULT")
            cursor.execute("ANALYZE customers_customer, points_account, points_lot, points_entry, points_allocation")
        elapsed = time.monotonic() - started
        self.stdout.write(
            f"generated {total:,} customers/accounts and {lots:,} lots (+ entries, allocations) "
            f"in {elapsed:.1f}s ({lots / max(elapsed, 1e-9):,.0f} lots/s)"
        )

    def _refuse_production(self, force: bool) -> None:
        name = connection.settings_dict["NAME"] or ""
        benchmark_like = "bench" in name or "test" in name
        if force or benchmark_like:
            return
        if Customer.objects.exists() or Account.objects.exists():
            raise CommandError(
                f"database {name!r} is not empty and does not look like a benchmark database "
                "(no 'bench' or 'test' in its name); refusing. Use a dedicated database, or --force."
            )

    @staticmethod
    def _is_superuser(cursor) -> bool:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        return bool(cursor.fetchone()[0])

    @staticmethod
    def _reserve(cursor, model, count: int) -> int:
        """First of ``count`` fresh ids of ``model``'s table: moves its sequence past them and past its largest id."""
        table = model._meta.db_table
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
        sequence = cursor.fetchone()[0]
        cursor.execute(
            f"SELECT setval(%s, GREATEST((SELECT COALESCE(MAX(id), 0) FROM {table}), "
            f"(SELECT last_value FROM {sequence})) + %s)",
            [sequence, count],
        )
        return cursor.fetchone()[0] - count + 1

    def _batch(self, cursor, size: int, options: dict, balance_type_id: int, now: datetime, rng: random.Random):
        per_account = options["lots_per_account"]
        due_fraction, ahead = options["due_fraction"], options["days_ahead"]
        low, high = options["min_amount"], options["max_amount"]
        with transaction.atomic():
            first_customer = self._reserve(cursor, Customer, size)
            first_account = self._reserve(cursor, Account, size)
            first_lot = self._reserve(cursor, Lot, size * per_account)
            first_entry = self._reserve(cursor, Entry, size * per_account)
            first_allocation = self._reserve(cursor, Allocation, size * per_account)
            stamp = now.isoformat()
            customers, accounts, lots, entries, allocations = (io.StringIO() for _ in range(5))
            lot_id, entry_id, allocation_id = first_lot, first_entry, first_allocation
            for index in range(size):
                customer_id, account_id = first_customer + index, first_account + index
                # +79 and nine digits: unique per customer id, apart from the test factory's +7916 range.
                customers.write(
                    f"{customer_id}\t+79{customer_id % 10**9:09d}\t\tmember\t{stamp}\t{stamp}\t{stamp}"
                    "\t\t\tretail\t\t\tru\n"
                )
                available = 0
                for _ in range(per_account):
                    amount = rng.randint(low, high)
                    if rng.random() < due_fraction:
                        expires = now - timedelta(seconds=rng.randint(DAY, 30 * DAY))
                    else:
                        expires = now + timedelta(seconds=rng.randint(DAY, ahead * DAY))
                    created = (expires - timedelta(days=365)).isoformat()
                    lots.write(
                        f"{lot_id}\t{account_id}\tpurchase\t{amount}\t{amount}\t0\tactive\t\\N\t"
                        f"{expires.isoformat()}\t365\t\tbench\t\t{created}\n"
                    )
                    entries.write(
                        f"{entry_id}\t{account_id}\taccrue\t{amount}\t{amount}\t0\t0\t0\t"
                        f"bench:lot:{lot_id}\t0\t\t\t{created}\n"
                    )
                    allocations.write(f"{allocation_id}\t{entry_id}\t{lot_id}\t{amount}\t0\n")
                    available += amount
                    lot_id, entry_id, allocation_id = lot_id + 1, entry_id + 1, allocation_id + 1
                accounts.write(
                    f"{account_id}\t{customer_id}\t{balance_type_id}\t{available}\t0\t0\t0\t{stamp}\t{stamp}\n"
                )
            _copy(
                cursor,
                "customers_customer (id, phone, name, membership, joined_at, created_at, updated_at, "
                "email, gender, kind, company, b2b_role, language)",
                customers,
            )
            _copy(
                cursor,
                "points_account (id, customer_id, balance_type_id, available, pending, held, debt, "
                "created_at, updated_at)",
                accounts,
            )
            _copy(
                cursor,
                "points_lot (id, account_id, kind, amount, remaining, held, state, available_from, expires_at, "
                "lifetime_days, restriction, source_type, source_id, created_at)",
                lots,
            )
            _copy(
                cursor,
                "points_entry (id, account_id, kind, amount, available_delta, pending_delta, held_delta, debt_delta, "
                "operation_key, operation_seq, fingerprint, reason, created_at)",
                entries,
            )
            _copy(cursor, "points_allocation (id, entry_id, lot_id, remaining_delta, held_delta)", allocations)
        return size * per_account


def _copy(cursor, target: str, buffer: io.StringIO) -> None:
    with cursor.cursor.copy(f"COPY {target} FROM STDIN") as copy:
        copy.write(buffer.getvalue())
