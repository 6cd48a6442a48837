"""Benchmark: the points ledger on PostgreSQL at scale, every figure against a baseline of the same run.

Scenarios (`--only` picks some):
  redeem  points_redeem across several lots (soonest-expiring first) on random accounts, with 1 and 8
          worker processes (each its own connection): ops/s, p50/p99 latency.
          Baseline: the same redemption as ONE hand-written SQL statement (a CTE that locks the account,
          picks lots by expiry, updates them, inserts the entry and allocations, updates the account).
  mixed   accrue pending → unlock → redeem → refund, four services per cycle, same worker counts: ops/s.
          Baseline: points_accrue (active) alone, same workers, same run.
  expiry  points_expire_due over N due lots among all lots, against the same expiry as ONE bare
          set-based SQL statement over the same number of rows (same journal rows and balance updates,
          no chunking, no explicit account locks); both in a child process, peak RSS reported.
          Then the same at a larger size (`--expiry-large`) to show memory stays flat.

The database is dedicated: `--database` (default loyalty_crm_bench_<accounts>, so a quick run never drops
a big one) is dropped, created, migrated and filled by `manage.py points_bulk_generate`; with `--reuse`
an existing one of the right size is used as is. Each expiry run consumes due lots: it expires the
soonest-expiring active lots by moving "now" forward, so a reused database serves a few runs.

    .venv/bin/python bench/ledger.py                                     # ~3 minutes, 50k accounts
    .venv/bin/python bench/ledger.py --accounts 1000000 --reuse \\
        --expiry-lots 1000000 --expiry-large 3000000                      # the issue's sizes
"""

import argparse
import multiprocessing
import os
import random
import resource
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--database", default=None, help="default: loyalty_crm_bench_<accounts>")
    parser.add_argument("--reuse", action="store_true", help="use the database as is if it has the right size")
    parser.add_argument("--accounts", type=int, default=50000)
    parser.add_argument("--lots-per-account", type=int, default=10)
    parser.add_argument("--due-fraction", type=float, default=0.1)
    parser.add_argument("--workers", default="1,8", help="comma-separated worker process counts")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each timed phase")
    parser.add_argument("--redeem-amount", default="600", help="spans 2+ lots (lots are 50 to 500 points)")
    parser.add_argument("--expiry-lots", type=int, default=50000)
    parser.add_argument("--expiry-large", type=int, default=150000, help="0: skip the memory run")
    parser.add_argument("--no-one-statement", dest="one_statement", action="store_false", help="skip that floor")
    parser.add_argument(
        "--no-large-baseline", dest="large_baseline", action="store_false", help="large run: compare with the first"
    )
    parser.add_argument("--service-first", action="store_true", help="expiry: run the service before the baselines")
    parser.add_argument("--only", default="redeem,mixed,expiry")
    return parser.parse_args()


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:
    ARGS.database = ARGS.database or f"loyalty_crm_bench_{ARGS.accounts}"
    os.environ["TEST_DATABASE_URL"] = f"{ARGS.server}/{ARGS.database}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_crm.settings.test")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

import psycopg  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402
from django.db.models import Max, Min  # noqa: E402

from customers.models import Customer  # noqa: E402
from points.exceptions import InsufficientPoints  # noqa: E402
from points.models import Account, Entry, Lot  # noqa: E402
from points.services import (  # noqa: E402
    points_accrue,
    points_expire_due,
    points_reconcile,
    points_redeem,
    points_refund,
    points_unlock,
)
from points.services.expiry import EXPIRE_CHUNK_SQL  # noqa: E402
from points.services.journal import fingerprint  # noqa: E402

MEMBER = Customer.Membership.MEMBER
RUN = datetime.now(UTC).strftime("%Y%m%d%H%M%S")

# The floor: points_redeem as one statement. Same lots, same order, same rows as the service; like the
# service it refuses (writes nothing) when the spendable total is short or the key was used.
# Only safe without contention on the account: the lots are read in the statement's snapshot, taken
# before the account lock is granted — the benchmark gives each worker its own accounts.
REDEEM_SQL = """
WITH account AS (
    SELECT a.id, c.membership = 'member' AS is_member
    FROM points_account a
    JOIN points_balancetype t ON t.id = a.balance_type_id
    JOIN customers_customer c ON c.id = a.customer_id
    WHERE a.customer_id = %(customer)s AND t.code = %(balance_type)s
    FOR UPDATE OF a
), candidates AS (
    SELECT lot.id, lot.remaining,
           SUM(lot.remaining) OVER (ORDER BY lot.expires_at ASC NULLS LAST, lot.id) AS running
    FROM points_lot lot JOIN account ON lot.account_id = account.id
    WHERE lot.state = 'active' AND lot.remaining > 0 AND (lot.expires_at IS NULL OR lot.expires_at > %(now)s)
      AND lot.restriction <> 'first_order' AND (account.is_member OR lot.restriction <> 'members_only')
), enough AS (
    SELECT COALESCE(MAX(running), 0) >= %(amount)s AND NOT EXISTS (
        SELECT 1 FROM points_entry WHERE operation_key = %(key)s AND operation_seq = 0
    ) AS ok
    FROM candidates
), taken AS (
    SELECT c.id, LEAST(c.remaining, %(amount)s - (c.running - c.remaining)) AS part
    FROM candidates c, enough WHERE enough.ok AND c.running - c.remaining < %(amount)s
), lots AS (
    UPDATE points_lot lot SET remaining = lot.remaining - taken.part,
        state = CASE WHEN lot.remaining - taken.part = 0 AND lot.held = 0 THEN 'spent' ELSE lot.state END
    FROM taken WHERE lot.id = taken.id
    RETURNING lot.id, taken.part
), entry AS (
    INSERT INTO points_entry (account_id, kind, amount, available_delta, pending_delta, held_delta, debt_delta,
                              operation_key, operation_seq, fingerprint, reason, created_at)
    SELECT account.id, 'redeem', %(amount)s, -%(amount)s, 0, 0, 0, %(key)s, 0, %(fingerprint)s, '', %(now)s
    FROM account, enough WHERE enough.ok
    RETURNING id, account_id
), allocations AS (
    INSERT INTO points_allocation (entry_id, lot_id, remaining_delta, held_delta)
    SELECT entry.id, lots.id, -lots.part, 0 FROM entry, lots
), totals AS (
    UPDATE points_account a SET available = a.available - %(amount)s, updated_at = %(now)s
    FROM entry WHERE a.id = entry.account_id
)
SELECT (SELECT id FROM entry)
"""

# The floors for expiry: the service's own statement (same journal rows, same balance updates), without
# the service's Python: over every due lot at once, or chunk after chunk chosen by the statement itself
# (no id list, no explicit account locks; each chunk its own transaction).
_CHUNK_FILTER = "id = ANY(%(ids)s) AND "
_RESULT = "SELECT COUNT(*), COALESCE(SUM(remaining), 0) FROM expired"
if _CHUNK_FILTER not in EXPIRE_CHUNK_SQL or _RESULT not in EXPIRE_CHUNK_SQL:
    raise SystemExit("the expiry SQL changed: update the baselines in bench/ledger.py")
EXPIRE_ALL_SQL = EXPIRE_CHUNK_SQL.replace(_CHUNK_FILTER, "")
EXPIRE_NEXT_CHUNK_SQL = EXPIRE_CHUNK_SQL.replace(
    _CHUNK_FILTER,
    "id IN (SELECT id FROM points_lot WHERE state = 'active' AND expires_at <= %(now)s AND id > %(after)s "
    "ORDER BY id LIMIT %(chunk)s) AND ",
).replace(_RESULT, "SELECT COUNT(*), COALESCE(SUM(remaining), 0), MAX(id) FROM expired")


# --- database -------------------------------------------------------------------------------------


def prepare_database(args) -> None:
    with psycopg.connect(f"{args.server}/postgres", autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [args.database]).fetchone()
    if exists and args.reuse and Account.objects.count() == args.accounts:
        print(f"reusing {args.database}: {args.accounts:,} accounts, {Lot.objects.count():,} lots")
        return
    connections.close_all()
    with psycopg.connect(f"{args.server}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{args.database}"')
        admin.execute(f'CREATE DATABASE "{args.database}"')
    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    call_command(
        "points_bulk_generate",
        accounts=args.accounts,
        lots_per_account=args.lots_per_account,
        due_fraction=args.due_fraction,
        batch=20000,
    )
    elapsed = time.perf_counter() - started
    lots = args.accounts * args.lots_per_account
    print(f"generated {args.database}: {lots:,} lots in {elapsed:.0f}s ({lots / elapsed:,.0f} lots/s)")


# --- timed phases in worker processes --------------------------------------------------------------


def customers_range() -> tuple[int, int]:
    span = Account.objects.filter(balance_type__code="retail").aggregate(
        low=Min("customer_id"), high=Max("customer_id")
    )
    return span["low"], span["high"]


def pick_customer(rng: random.Random, low: int, high: int, worker: int, workers: int) -> int:
    """A random customer of this worker's share (id ≡ worker mod workers): workers never share an account."""
    while True:
        customer_id = rng.randint(low, high)
        if customer_id % workers == worker:
            return customer_id


def redeem_orm(customer_id: int, key: str, amount: Decimal) -> None:
    # The service needs the customer's id only; the member flag is what the generator wrote.
    points_redeem(customer=Customer(pk=customer_id, membership=MEMBER), amount=amount, operation_key=key)


def redeem_sql(customer_id: int, key: str, amount: Decimal) -> None:
    parameters = {
        "customer": customer_id,
        "balance_type": "retail",
        "amount": amount,
        "key": key,
        "now": datetime.now(UTC),
        "fingerprint": fingerprint(
            op="redeem", customer=customer_id, amount=amount, balance_type="retail", first_order=False
        ),
    }
    with connection.cursor() as cursor:  # autocommit: the statement is its own transaction
        cursor.execute(REDEEM_SQL, parameters)
        if cursor.fetchone()[0] is None:
            raise InsufficientPoints()


def accrue_only(customer_id: int, key: str, amount: Decimal) -> None:
    customer = Customer(pk=customer_id, membership=MEMBER)
    points_accrue(customer=customer, amount=amount, kind="purchase", operation_key=key)


def mixed_cycle(customer_id: int, key: str, amount: Decimal) -> int:
    """Four services: a pending accrual, its unlock, a redemption across lots, a refund of it."""
    customer = Customer(pk=customer_id, membership=MEMBER)
    lot = points_accrue(customer=customer, amount=amount, kind="purchase", operation_key=f"{key}:a", pending=True).lot
    points_unlock(operation_key=f"{key}:u", lot_ids=[lot.pk])
    redemption = points_redeem(customer=customer, amount=amount + 50, operation_key=f"{key}:r")
    points_refund(redemption_id=redemption.entries[0].pk, operation_key=f"{key}:f")
    return 4


OPERATIONS = {"redeem_orm": redeem_orm, "redeem_sql": redeem_sql, "accrue": accrue_only, "mixed": mixed_cycle}


def worker_loop(name, worker, workers, start_at, seconds, low, high, amount):
    connections.close_all()  # a forked child opens its own connection
    operation, rng = OPERATIONS[name], random.Random(f"{RUN}:{name}:{workers}:{worker}")
    latencies, refused, errors, done, index = [], 0, 0, 0, 0
    time.sleep(max(0.0, start_at - time.time()))
    deadline = start_at + seconds
    while time.time() < deadline:
        index += 1
        key = f"bench:{RUN}:{name}:{workers}:{worker}:{index}"
        started = time.perf_counter()
        try:
            done += operation(pick_customer(rng, low, high, worker, workers), key, amount) or 1
        except InsufficientPoints:
            refused += 1
            continue
        except Exception as error:  # counted and shown: a benchmark must not hide failures
            errors += 1
            if errors <= 3:
                print(f"  {name} worker {worker}: {type(error).__name__}: {error}", file=sys.stderr)
            continue
        latencies.append(time.perf_counter() - started)
    connections.close_all()
    return latencies, done, refused, errors


def timed_phase(name: str, workers: int, seconds: float, low: int, high: int, amount: Decimal) -> dict:
    connections.close_all()
    start_at = time.time() + 1.0
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        results = pool.starmap(
            worker_loop, [(name, w, workers, start_at, seconds, low, high, amount) for w in range(workers)]
        )
    latencies = sorted(x for r in results for x in r[0])
    done, refused, errors = (sum(r[i] for r in results) for i in (1, 2, 3))
    return {
        "ops": done / seconds,
        "count": done,
        "p50": percentile(latencies, 0.50) * 1000,
        "p99": percentile(latencies, 0.99) * 1000,
        "refused": refused,
        "errors": errors,
    }


def percentile(values: list[float], fraction: float) -> float:
    return values[min(len(values) - 1, int(fraction * len(values)))] if values else float("nan")


def show(label: str, result: dict, baseline: dict) -> None:
    print(
        f"  {label:<26} {result['ops']:9.1f} ops/s  p50 {result['p50']:7.2f} ms  p99 {result['p99']:7.2f} ms"
        f"  ratio to baseline: ops {result['ops'] / baseline['ops']:5.2f}, p50 {result['p50'] / baseline['p50']:5.2f}"
        f"  ({result['count']} ops, {result['refused']} refused, {result['errors']} errors)"
    )


def lots_per_redemption(pattern: str) -> float:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*)::float / GREATEST(COUNT(DISTINCT a.entry_id), 1) FROM points_allocation a "
            "JOIN points_entry e ON e.id = a.entry_id WHERE e.kind = 'redeem' AND e.operation_key LIKE %s",
            [pattern],
        )
        return cursor.fetchone()[0]


def bench_redeem(args, low: int, high: int) -> list[int]:
    amount = Decimal(args.redeem_amount)
    print(f"\nredemption of {amount} points, soonest-expiring lots first, random accounts among {args.accounts:,}")
    for workers in args.worker_counts:
        baseline = timed_phase("redeem_sql", workers, args.seconds, low, high, amount)
        result = timed_phase("redeem_orm", workers, args.seconds, low, high, amount)
        print(f" {workers} worker(s)")
        show("baseline: one SQL statement", baseline, baseline)
        show("points_redeem", result, baseline)
    print(
        f"  lots per redemption: points_redeem {lots_per_redemption(f'bench:{RUN}:redeem_orm:%'):.2f}, "
        f"SQL {lots_per_redemption(f'bench:{RUN}:redeem_sql:%'):.2f}"
    )


def bench_mixed(args, low: int, high: int) -> None:
    amount = Decimal("100")
    print("\nmixed workload: accrue pending → unlock → redeem (across lots) → refund; 4 operations per cycle")
    for workers in args.worker_counts:
        baseline = timed_phase("accrue", workers, args.seconds, low, high, amount)
        result = timed_phase("mixed", workers, args.seconds, low, high, amount)
        print(f" {workers} worker(s)   (latency of the mixed row is per 4-operation cycle)")
        show("baseline: points_accrue", baseline, baseline)
        show("mixed (operations/s)", result, baseline)


# --- expiry ---------------------------------------------------------------------------------------


def due_cutoff(count: int) -> datetime:
    """The "now" at which exactly the ``count`` soonest-expiring active lots are due."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT expires_at FROM points_lot WHERE state = 'active' AND expires_at IS NOT NULL "
            "ORDER BY expires_at OFFSET %s LIMIT 1",
            [count - 1],
        )
        row = cursor.fetchone()
    if row is None:
        raise SystemExit("not enough active lots left for the expiry runs: run without --reuse to regenerate")
    return row[0]


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def expiry_child(kind: str, now: datetime, queue) -> None:
    connections.close_all()
    start_rss = rss_kib()
    started = time.perf_counter()
    if kind == "sql_one":
        with connection.cursor() as cursor:
            cursor.execute(EXPIRE_ALL_SQL, {"now": now})
            lots, points = cursor.fetchone()
    elif kind == "sql_chunked":
        lots, points, after, chunk = 0, Decimal(0), 0, django.conf.settings.POINTS_EXPIRY_CHUNK_SIZE
        with connection.cursor() as cursor:
            while True:
                cursor.execute(EXPIRE_NEXT_CHUNK_SQL, {"now": now, "after": after, "chunk": chunk})
                count, total, after = cursor.fetchone()
                if not count:
                    break
                lots, points = lots + count, points + total
    else:
        result = points_expire_due(now=now)
        lots, points = result.lots, result.points
    elapsed = time.perf_counter() - started
    connections.close_all()
    queue.put((lots, str(points), elapsed, start_rss, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


def run_expiry(kind: str, count: int) -> dict:
    now = due_cutoff(count)
    connections.close_all()
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=expiry_child, args=(kind, now, queue))
    child.start()
    lots, points, elapsed, start_rss, peak_rss = queue.get()
    child.join()
    return {
        "lots": lots,
        "points": points,
        "seconds": elapsed,
        "rate": lots / elapsed,
        "start": start_rss,
        "peak": peak_rss,
    }


def bench_expiry(args) -> None:
    chunk = django.conf.settings.POINTS_EXPIRY_CHUNK_SIZE
    print(f"\nexpiry of due lots among {Lot.objects.count():,} (POINTS_EXPIRY_CHUNK_SIZE={chunk})")
    print("  each run expires the next N soonest-expiring active lots (its 'now' is moved to the N-th expiry);")
    print("  ratio = time per lot / time per lot of the last chunked SQL baseline (same size unless said)")
    labels = {
        "sql_chunked": "baseline: chunked SQL",
        "sql_one": "one SQL statement",
        "service": "points_expire_due",
    }
    first = ("service", "sql_chunked") if args.service_first else ("sql_chunked", "service")
    sizes = [(args.expiry_lots, (*first, "sql_one") if args.one_statement else first)]
    if args.expiry_large:
        sizes.append((args.expiry_large, first if args.large_baseline else ("service",)))
    baseline = None
    for size, kinds in sizes:
        measured = {kind: run_expiry(kind, size) for kind in kinds}  # in this order
        baseline = measured.get("sql_chunked", baseline)
        for kind, figures in sorted(measured.items(), key=lambda item: item[0] != "sql_chunked"):
            print(
                f"  {size:>9,} due  {labels[kind]:<22} {figures['lots']:>9,} lots in {figures['seconds']:7.1f}s = "
                f"{figures['rate']:7,.0f} lots/s  ratio {baseline['rate'] / figures['rate']:5.2f}"
                f"  peak RSS {figures['peak'] / 1024:5.0f} MiB (at start {figures['start'] / 1024:.0f})"
            )
        print(f"  (run order: {', '.join(kinds)})")


# --- main -----------------------------------------------------------------------------------------


def check_consistency() -> None:
    touched = list(
        Entry.objects.filter(operation_key__startswith=f"bench:{RUN}:")
        .values_list("account_id", flat=True)
        .distinct()[:2000]
    )
    problems = points_reconcile(account_ids=touched)
    print(f"\nreconcile on {len(touched)} touched accounts: {'consistent' if not problems else problems[:5]}")
    if problems:
        raise SystemExit(1)


def main(args) -> None:
    args.worker_counts = [int(w) for w in args.workers.split(",")]
    only = set(args.only.split(","))
    prepare_database(args)
    low, high = customers_range()
    print(
        f"database {args.database} on {connection.settings_dict['HOST']}; {os.cpu_count()} cores; "
        f"phases of {args.seconds:g}s; run {RUN}"
    )
    if "redeem" in only:
        bench_redeem(args, low, high)
    if "mixed" in only:
        bench_mixed(args, low, high)
    if "redeem" in only or "mixed" in only:
        check_consistency()
    if "expiry" in only:
        bench_expiry(args)
    print(f"\npeak RSS of this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main(ARGS)
