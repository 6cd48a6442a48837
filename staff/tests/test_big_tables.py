"""The admin's big lists stay cheap on millions of rows (SPEC F-STAFF-4): customers, orders, lots and journal entries.

Each list, as the bench (bench/admin.py) times it on a million customers: a bounded number of queries, no
``COUNT(*)`` over the whole table, the right rows. On PostgreSQL the plans of the searches and filters are checked
to use their indexes.
"""

import re
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.admin import EstimatedCountPaginator
from customers.models import Customer
from customers.tests.factories import CustomerFactory, StoreFactory
from orders.tests.factories import place
from points.models import Entry, Lot
from points.services import points_accrue
from points.tests.helpers import key

pytestmark = pytest.mark.django_db

ON_POSTGRESQL = connection.vendor == "postgresql"
CUSTOMERS = "/admin/customers/customer/"
ORDERS = "/admin/orders/order/"
LOTS = "/admin/points/lot/"
ENTRIES = "/admin/points/entry/"
JANUARY = datetime(2026, 1, 1, tzinfo=timezone.get_current_timezone())
FEBRUARY = datetime(2026, 2, 1, tzinfo=timezone.get_current_timezone())


def whole_table_counts(queries: CaptureQueriesContext, table: str) -> list[str]:
    """The statements that counted every row of ``table``."""
    return [
        query["sql"]
        for query in queries.captured_queries
        if re.search(r"COUNT\(\*\)", query["sql"]) and f'FROM "{table}"' in query["sql"] and "WHERE" not in query["sql"]
    ]


def list_page(client, url: str, params: dict, django_assert_max_num_queries) -> tuple:
    """The list page at ``url`` with ``params`` (at most 10 queries) and the statements it ran."""
    with django_assert_max_num_queries(10), CaptureQueriesContext(connection) as queries:
        response = client.get(url, params)
    assert response.status_code == 200
    return response, queries


def shown(response) -> list[int]:
    return [row.pk for row in response.context["cl"].result_list]


def analyse(*tables: str) -> None:
    """Up-to-date planner statistics (the row estimates the paginators read)."""
    if ON_POSTGRESQL:
        with connection.cursor() as cursor:
            for table in tables:
                cursor.execute(f"ANALYZE {table}")


@pytest.fixture
def big(monkeypatch):
    """Treat the test's tables as big ones: the paginators trust the planner's estimate from 10 rows on (1,000,000
    customers in the bench; 10,000 rows in the code)."""
    monkeypatch.setattr(EstimatedCountPaginator, "exact_below", 10)


# --- customers -------------------------------------------------------------------------------------------------------


@pytest.fixture
def customers(db) -> Customer:
    """120 customers; the one returned has a name and a phone none of the others has."""
    Customer.objects.bulk_create(
        Customer(phone=f"+7903{number:07d}", name=f"Customer {number}", membership=Customer.Membership.NON_MEMBER)
        for number in range(119)
    )
    wanted = CustomerFactory(phone="+79161234567", name="Anna Zhukovskaya")
    analyse("customers_customer")
    return wanted


def test_the_customer_list_shows_the_newest_without_counting_the_table(
    admin_client, customers, big, django_assert_max_num_queries
):
    response, queries = list_page(admin_client, CUSTOMERS, {}, django_assert_max_num_queries)

    assert shown(response) == list(Customer.objects.order_by("-pk").values_list("pk", flat=True)[:50])
    if ON_POSTGRESQL:
        assert whole_table_counts(queries, "customers_customer") == []
        assert response.context["cl"].result_count == 120  # the planner's estimate, exact after ANALYZE


def test_the_second_page_of_customers(admin_client, customers, big, django_assert_max_num_queries):
    response, queries = list_page(admin_client, CUSTOMERS, {"p": 2}, django_assert_max_num_queries)

    assert shown(response) == list(Customer.objects.order_by("-pk").values_list("pk", flat=True)[50:100])
    if ON_POSTGRESQL:
        assert whole_table_counts(queries, "customers_customer") == []


@pytest.mark.parametrize("typed", ["8 (916) 123-45-67", "+7 916 123 45 67", "9161234567"])
def test_customers_found_by_phone_typed_in_another_format(
    admin_client, customers, big, typed, django_assert_max_num_queries
):
    response, queries = list_page(admin_client, CUSTOMERS, {"q": typed}, django_assert_max_num_queries)

    assert shown(response) == [customers.pk]
    assert whole_table_counts(queries, "customers_customer") == []


def test_customers_found_by_part_of_the_name(admin_client, customers, big, django_assert_max_num_queries):
    response, queries = list_page(admin_client, CUSTOMERS, {"q": "zhukov"}, django_assert_max_num_queries)
    too_short, _ = list_page(admin_client, CUSTOMERS, {"q": "An"}, django_assert_max_num_queries)

    assert shown(response) == [customers.pk]
    assert whole_table_counts(queries, "customers_customer") == []
    assert shown(too_short) == []  # two letters: no index can serve it, so names are not searched


# --- orders, lots, journal -------------------------------------------------------------------------------------------


@pytest.fixture
def ledger(channel):
    """Orders in two stores, in and out of January, and the lots and journal lines they and accruals made."""
    here, there = StoreFactory(name="Here"), StoreFactory(name="There")
    customer = CustomerFactory()
    orders = {
        "here in january": [
            place(channel, customer, store=here, created_at=JANUARY + timedelta(days=day)) for day in (0, 10, 30)
        ],
        "here in february": [place(channel, customer, store=here, created_at=FEBRUARY)],
        "here in december": [place(channel, customer, store=here, created_at=JANUARY - timedelta(seconds=1))],
        "there in january": [place(channel, customer, store=there, created_at=JANUARY + timedelta(days=3))],
    }
    for number in range(3):
        points_accrue(customer=customer, amount=Decimal(10 + number), kind="manual", operation_key=key("accrue"))
    analyse("orders_order", "points_lot", "points_entry")
    return {"here": here, "orders": orders}


def test_orders_of_a_store_in_a_month(admin_client, ledger, big, django_assert_max_num_queries):
    params = {
        "store__id__exact": ledger["here"].pk,
        "created_at__gte": JANUARY.isoformat(),
        "created_at__lt": FEBRUARY.isoformat(),
    }

    response, queries = list_page(admin_client, ORDERS, params, django_assert_max_num_queries)

    january = sorted(ledger["orders"]["here in january"], key=lambda order: order.created_at, reverse=True)
    assert shown(response) == [order.pk for order in january]
    assert whole_table_counts(queries, "orders_order") == []


def test_lots_by_state(admin_client, ledger, big, django_assert_max_num_queries):
    response, queries = list_page(admin_client, LOTS, {"state__exact": "pending"}, django_assert_max_num_queries)

    pending = Lot.objects.filter(state=Lot.State.PENDING).order_by("-pk")
    assert len(pending) == 18  # each of the six orders: a pending lot per line (three lines)
    assert shown(response) == [lot.pk for lot in pending]
    assert whole_table_counts(queries, "points_lot") == []


def test_journal_entries_by_kind(admin_client, ledger, big, django_assert_max_num_queries):
    response, queries = list_page(admin_client, ENTRIES, {"kind__exact": "adjust"}, django_assert_max_num_queries)
    accruals, _ = list_page(admin_client, ENTRIES, {"kind__exact": "accrue"}, django_assert_max_num_queries)

    assert shown(response) == []
    assert shown(accruals) == list(Entry.objects.filter(kind="accrue").order_by("-pk").values_list("pk", flat=True))
    assert all(entry.kind == "accrue" for entry in accruals.context["cl"].result_list)
    assert len(shown(accruals)) > 3
    assert whole_table_counts(queries, "points_entry") == []


# --- the plans (PostgreSQL) ------------------------------------------------------------------------------------------


def plans(queries: CaptureQueriesContext, table: str) -> list[str]:
    """``EXPLAIN`` of each statement the page ran on ``table``."""
    found = []
    with connection.cursor() as cursor:
        for query in queries.captured_queries:
            if f'FROM "{table}"' in query["sql"] and query["sql"].lstrip().startswith("SELECT"):
                cursor.execute(f"EXPLAIN {query['sql']}")
                found.append("\n".join(row[0] for row in cursor.fetchall()))
    return found


def index_scan(index: str, plan: str) -> bool:
    """Whether ``plan`` reads the index ``index`` ("Index Scan using …", "Bitmap Index Scan on …")."""
    return re.search(rf"(Index Scan|Index Only Scan)( Backward)? using {index} |Bitmap Index Scan on {index}\b", plan)


@pytest.fixture
def no_seqscan():
    """Whether an index *can* serve a statement, whatever the table's size: with sequential scans priced out, the
    planner still falls back to one when no index applies (so "no Seq Scan" proves the index is usable). On the
    bench's million customers the planner picks these indexes by itself; on a test's few thousand rows a scan
    would be cheaper and the plan would say nothing about the index."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # this test's transaction only


@pytest.mark.skipif(not ON_POSTGRESQL, reason="PostgreSQL's plans")
@pytest.mark.parametrize(
    ("term", "index"),
    [
        ("zhukov", "customer_name_trgm"),  # the name: UPPER(name) LIKE '%ZHUKOV%' through the trigram index
        ("8 916 123 45 67", "customer_phone_unique_active"),  # the phone, normalised to +79161234567
        ("anna@example.com", "customer_email"),
        ("CARD-7", r"customers_customer_card_number_\w+"),
    ],
)
def test_the_customer_searches_use_indexes(admin_client, customers, no_seqscan, term, index):
    Customer.objects.bulk_create(
        Customer(phone=f"+7904{number:07d}", name=f"Someone {number}", membership=Customer.Membership.NON_MEMBER)
        for number in range(3000)
    )
    analyse("customers_customer")

    with CaptureQueriesContext(connection) as queries:
        assert admin_client.get(CUSTOMERS, {"q": term}).status_code == 200

    explained = plans(queries, "customers_customer")
    assert explained, "the search ran no statement on the customers"
    for plan in explained:
        assert "Seq Scan on customers_customer" not in plan, plan
    assert any(index_scan(index, plan) for plan in explained), explained


@pytest.mark.skipif(not ON_POSTGRESQL, reason="PostgreSQL's plans")
@pytest.mark.parametrize(
    ("url", "params", "table", "index"),
    [
        # pending lots are also exactly the rows of the partial index lot_pending_by_date
        (LOTS, {"state__exact": "pending"}, "points_lot", "(lot_by_state|lot_pending_by_date)"),
        (LOTS, {"kind__exact": "manual"}, "points_lot", "lot_by_kind"),
        (ENTRIES, {"kind__exact": "accrue"}, "points_entry", "entry_by_kind"),
        # the store's foreign key index also leads with the store
        (ORDERS, "store and january", "orders_order", r"(orders_by_store_recent|orders_order_store_id_\w+)"),
        (ORDERS, {"status__exact": "cancelled"}, "orders_order", "orders_by_status_recent"),
    ],
)
def test_the_filters_of_the_big_lists_use_indexes(admin_client, ledger, no_seqscan, url, params, table, index):
    if params == "store and january":
        params = {
            "store__id__exact": ledger["here"].pk,
            "created_at__gte": JANUARY.isoformat(),
            "created_at__lt": FEBRUARY.isoformat(),
        }

    with CaptureQueriesContext(connection) as queries:
        assert admin_client.get(url, params).status_code == 200

    explained = plans(queries, table)
    for plan in explained:
        assert f"Seq Scan on {table}" not in plan, plan
    assert any(index_scan(index, plan) for plan in explained), explained
