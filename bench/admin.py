"""Benchmark: the admin on big tables (issue 7, F-STAFF-4) — 1,000,000 customers, 5,000,000 order lines and
10,000,000 journal entries — every page against the raw-SQL traps measured in the same run.

Pages, requested in-process with Django's test Client logged in as a superuser; server time is from the request to
the response (middleware, views, templates; no network), with the query count (CaptureQueriesContext) and the
SQL time of the request. One warm-up request, then ``--repeat`` timed ones: median and max. "/COUNT" is the page's
median over one full COUNT(*) of the table it lists, measured in the same run.
  customers p1        /admin/customers/customer/                         the unfiltered list, page 1
  customers p1000     /admin/customers/customer/?p=999                   page 1000
  search phone        ?q=8 926 123-45-67                                 an existing phone typed in another format
  search name         ?q=<--name>                                        part of a name (default "Кудряв")
  customer card       /admin/customers/customer/<id>/change/             a member with orders and a ledger
  card tables         /admin/customers/customer/<id>/section/<name>/     its orders, lots and journal (loaded lazily)
  lots by state       /admin/points/lot/?<state filter>=expired
  entries by kind     /admin/points/entry/?<kind filter>=redeem
  orders store+date   /admin/orders/order/?<store filter>&<date filter>  the biggest store, past 7 days
Filter parameters are read from the admins' own list filters (their choices' query strings), so the URLs follow
the admins when their filters change. Goal per page: a median under 100 ms with at most 10 queries (met/MISSED).

Baselines (the traps issue 7 names, raw SQL on the same data): SELECT COUNT(*) of customers, lots, journal
entries and orders (a default admin changelist runs two), SELECT DISTINCT store_id over the orders (a related-field
list filter built from the data), and UPPER(phone) LIKE on customers (what ``search_fields`` does: no plain index
serves it).

The database (``--database``, default loyalty_crm_bench_admin) is dropped, created, migrated and filled by
``manage.py generate_demo --customers N``; ``--reuse`` takes an existing one as it is (migrating it, so new
indexes are built). It is dropped at the end unless ``--keep`` or ``--reuse``.

    .venv/bin/python bench/admin.py --customers 1000000 --keep     # generation ~8 min on 2 cores, then ~1 min
    .venv/bin/python bench/admin.py --reuse                        # measure again on the kept database
    .venv/bin/python bench/admin.py --customers 20000              # a quick run (its own throw-away database)
"""

import argparse
import os
import statistics
import sys
import time
from datetime import date
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--database", default="loyalty_crm_bench_admin")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--lines-per-customer", type=int, default=5)
    parser.add_argument("--entries-per-customer", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2, help="generate_demo's writer processes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reuse", action="store_true", help="use the existing database as it is")
    parser.add_argument("--keep", action="store_true", help="keep the database at the end")
    parser.add_argument("--repeat", type=int, default=5, help="timed requests per page (after one warm-up)")
    parser.add_argument("--name", default="Кудряв", help="the name search's substring")
    return parser.parse_args()


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:
    os.environ["TEST_DATABASE_URL"] = f"{ARGS.server}/{ARGS.database}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_crm.settings.test")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

import psycopg  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib import admin  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402
from django.test import Client, RequestFactory  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import translation  # noqa: E402

from customers.models import Customer  # noqa: E402
from integrations.models import Store  # noqa: E402
from orders.models import Order  # noqa: E402
from points.models import Entry, Lot  # noqa: E402

GOAL_MS, GOAL_QUERIES = 100.0, 10
COUNTED = ["customers_customer", "points_lot", "points_entry", "orders_order"]


# --- database -------------------------------------------------------------------------------------


def prepare_database(args) -> float | None:
    """The filled database; returns the generation time in seconds (None when reused)."""
    with psycopg.connect(f"{args.server}/postgres", autocommit=True) as server:
        exists = server.execute("SELECT 1 FROM pg_database WHERE datname = %s", [args.database]).fetchone()
    if exists and args.reuse:
        print(f"reusing {args.database} (applying any new migrations, e.g. indexes)")
        call_command("migrate", verbosity=0)
        return None
    connections.close_all()
    with psycopg.connect(f"{args.server}/postgres", autocommit=True) as server:
        server.execute(f'DROP DATABASE IF EXISTS "{args.database}"')
        server.execute(f'CREATE DATABASE "{args.database}"')
    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    call_command(
        "generate_demo",
        customers=args.customers,
        lines_per_customer=args.lines_per_customer,
        entries_per_customer=args.entries_per_customer,
        workers=args.workers,
        seed=args.seed,
    )
    return time.perf_counter() - started


def drop_database(args) -> None:
    connections.close_all()
    with psycopg.connect(f"{args.server}/postgres", autocommit=True) as server:
        server.execute(f'DROP DATABASE IF EXISTS "{args.database}"')


def table_estimates() -> dict[str, int]:
    tables = ["customers_customer", "points_lot", "points_entry", "orders_order", "orders_orderline"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname, reltuples::bigint FROM pg_class WHERE relname = ANY(%s)", [tables])
        return dict(cursor.fetchall())


# --- what to request --------------------------------------------------------------------------------


def superuser():
    user = get_user_model().objects.filter(username="bench-admin").first()
    return user or get_user_model().objects.create_superuser("bench-admin", "bench@example.com", "bench-admin")


def filter_params(user, model, field: str, *, value: str | None = None, display: str | None = None) -> dict:
    """The query parameters of a choice of ``model``'s admin list filter on ``field``, as its changelist links
    it: by the choice's parameter value or its (English) label."""
    model_admin = admin.site._registry[model]
    request = RequestFactory().get("/")
    request.user = user
    changelist = model_admin.get_changelist_instance(request)
    with translation.override("en"):
        for spec in changelist.filter_specs:
            if field not in {getattr(spec, "field_path", None), getattr(spec, "parameter_name", None)}:
                continue
            for choice in spec.choices(changelist):
                params = dict(parse_qsl(choice.get("query_string", "").lstrip("?")))
                if (value is not None and value in params.values()) or (
                    display is not None and str(choice.get("display")) == display
                ):
                    return params
    raise LookupError(f"{model.__name__} admin: no list filter choice {field}={value or display!r}")


def national(phone: str) -> str:
    """+79261234567 as typed at a till: 8 926 123-45-67."""
    digits = phone[2:]
    return f"8 {digits[:3]} {digits[3:6]}-{digits[6:8]}-{digits[8:]}"


def pages(user, args) -> tuple[list[tuple[str, str, str]], Customer]:
    middle = Customer.objects.order_by("-pk").values_list("pk", flat=True).first() // 2
    customer = (
        Customer.objects.filter(pk__gte=middle, membership=Customer.Membership.MEMBER)
        .exclude(phone=None)
        .order_by("pk")
        .first()
    )
    store = Store.objects.filter(code="gen-store-01").first() or Store.objects.order_by("pk").first()
    customers = "/admin/customers/customer/"
    page = min(1000, table_estimates().get("customers_customer", 0) // 50)  # page 1000, or the last of a small run
    orders = {
        **filter_params(user, Order, "store", value=str(store.pk)),
        **filter_params(user, Order, "created_at", display="Past 7 days"),
    }
    lots = filter_params(user, Lot, "state", value="expired")
    entries = filter_params(user, Entry, "kind", value="redeem")
    phone = national(str(customer.phone))
    plan = [  # (label, URL, the table it lists: its full COUNT(*) is the page's yardstick)
        ("customers, page 1", customers, "customers_customer"),
        (f"customers, page {page}", f"{customers}?p={page - 1}", "customers_customer"),
        (f"customers, search phone '{phone}'", f"{customers}?{urlencode({'q': phone})}", "customers_customer"),
        (f"customers, search name '{args.name}'", f"{customers}?{urlencode({'q': args.name})}", "customers_customer"),
        (f"customer card #{customer.pk}", f"{customers}{customer.pk}/change/", "customers_customer"),
        # the card's history tables, each fetched by the page after it loads
        *(
            (f"card table: {name}", f"{customers}{customer.pk}/section/{name}/", table)
            for name, table in (("orders", "orders_order"), ("lots", "points_lot"), ("journal", "points_entry"))
        ),
        ("lots, state expired", f"/admin/points/lot/?{urlencode(lots)}", "points_lot"),
        ("entries, kind redeem", f"/admin/points/entry/?{urlencode(entries)}", "points_entry"),
        (f"orders, store {store.code} + past 7 days", f"/admin/orders/order/?{urlencode(orders)}", "orders_order"),
    ]
    return plan, customer


def traps(phone: str) -> list[tuple[str, str, list]]:
    digits = phone.removeprefix("+")
    counts = [(f"SELECT COUNT(*) FROM {table}", f"SELECT COUNT(*) FROM {table}", []) for table in COUNTED]
    return [
        *counts,
        ("SELECT DISTINCT store_id FROM orders_order", "SELECT DISTINCT store_id FROM orders_order", []),
        (
            "customers WHERE UPPER(phone) LIKE '%…%'",
            "SELECT id FROM customers_customer WHERE UPPER(phone::text) LIKE UPPER(%s) ORDER BY id DESC LIMIT 51",
            [f"%{digits}%"],
        ),
    ]


# --- measuring ---------------------------------------------------------------------------------------


class SqlTimer:
    """Sums the time of each query of a request (CaptureQueriesContext rounds each to the millisecond)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started


def measure_page(client: Client, url: str, repeat: int) -> dict:
    timings, queries, sql = [], [], []
    for attempt in range(repeat + 1):
        timer = SqlTimer()
        with CaptureQueriesContext(connection) as captured, connection.execute_wrapper(timer):
            started = time.perf_counter()
            response = client.get(url)
            elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise SystemExit(f"{url}: HTTP {response.status_code} {response.get('Location', '')}")
        if attempt:  # the first one warms caches
            timings.append(elapsed)
            queries.append(len(captured.captured_queries))
            sql.append(timer.seconds * 1000)
    return {
        "median": statistics.median(timings),
        "max": max(timings),
        "queries": max(queries),
        "sql": statistics.median(sql),
    }


def measure_sql(statement: str, params: list, repeat: int) -> dict:
    timings = []
    with connection.cursor() as cursor:
        for _ in range(repeat):
            started = time.perf_counter()
            cursor.execute(statement, params)
            cursor.fetchall()
            timings.append((time.perf_counter() - started) * 1000)
    return {"median": statistics.median(timings), "max": max(timings)}


def main(args) -> None:
    generation = prepare_database(args)
    try:
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
        user = superuser()
        client = Client()
        client.force_login(user)
        plan, customer = pages(user, args)
        estimates = table_estimates()
        print(
            f"\ndatabase {args.database}: ~{estimates.get('customers_customer', 0):,} customers, "
            f"~{estimates.get('orders_order', 0):,} orders, ~{estimates.get('orders_orderline', 0):,} order lines, "
            f"~{estimates.get('points_lot', 0):,} lots, ~{estimates.get('points_entry', 0):,} journal entries "
            f"(planner estimates); {os.cpu_count()} cores; PostgreSQL "
            f"{connection.cursor().connection.info.server_version // 10000}"
        )
        if generation is not None:
            print(f"generated by generate_demo --customers {args.customers:,} in {generation:.0f}s")
        print(
            f"{args.repeat} timed requests per page after one warm-up; "
            f"goal < {GOAL_MS:.0f} ms with <= {GOAL_QUERIES} queries\n"
        )

        baseline = {}
        print(f"{'baseline (raw SQL)':<62} {'median ms':>10} {'max ms':>9}")
        for label, statement, params in traps(str(customer.phone)):
            result = measure_sql(statement, params, args.repeat)
            baseline[label] = result
            print(f"{label:<62} {result['median']:10.1f} {result['max']:9.1f}")

        print(f"\n{'page':<62} {'median ms':>10} {'max ms':>9} {'queries':>8} {'SQL ms':>8} {'/COUNT':>7}  goal")
        missed = 0
        for label, url, table in plan:
            result = measure_page(client, url, args.repeat)
            met = result["median"] < GOAL_MS and result["queries"] <= GOAL_QUERIES
            missed += not met
            ratio = result["median"] / baseline[f"SELECT COUNT(*) FROM {table}"]["median"]
            print(
                f"{label:<62} {result['median']:10.1f} {result['max']:9.1f} {result['queries']:8d} "
                f"{result['sql']:8.1f} {ratio:7.2f}  {'met' if met else 'MISSED'}"
            )
        print("\nURLs:")
        for label, url, _table in plan:
            print(f"  {label}: {url}")
        print(f"\n{len(plan) - missed} of {len(plan)} pages met the goal ({date.today()})")
    finally:
        if not (args.keep or args.reuse):
            drop_database(args)


if __name__ == "__main__":
    main(ARGS)
