"""Row locks for the ledger. One lock per account, always taken before any of its lots are touched,
several accounts always in ascending pk order — so services and jobs can never deadlock each other."""

from functools import cache

from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, QuerySet

from core.sql import RowReader, uses_arrays
from customers.exceptions import CustomerMerged
from customers.models import Customer
from points.exceptions import UnknownBalanceType
from points.models import Account, BalanceType, Entry

_ACCOUNT, _CUSTOMER, _BALANCE_TYPE = RowReader(Account), RowReader(Customer), RowReader(BalanceType)


def _locking(key: str | None) -> QuerySet[Account]:
    queryset = Account.objects.select_for_update(of=("self",)).select_related("customer", "balance_type")
    if key is not None:
        # The idempotency check rides on the lock query: one round trip for both.
        queryset = queryset.annotate(key_used=Exists(Entry.objects.filter(operation_key=key, operation_seq=0)))
    return queryset


def account_lock(*, account_id: int, key: str | None = None) -> Account:
    return _locking(key).get(pk=account_id)


def accounts_lock(*, account_ids: list[int]) -> dict[int, Account]:
    """The accounts, locked in pk order, without their customers and balance types: the services that lock several
    accounts (unlock, cancel, clawback, merge, expiry) never read them, and the joins cost each delivery its share.
    A plain statement on PostgreSQL (every delivery and return locks so; the ORM took longer to build it)."""
    if not uses_arrays():
        accounts = Account.objects.select_for_update().filter(pk__in=account_ids).order_by("pk")
        return {account.pk: account for account in accounts}
    sql = (
        f"SELECT {_ACCOUNT.columns('a')} FROM {connection.ops.quote_name(Account._meta.db_table)} AS a "
        "WHERE a.id = ANY(%s) ORDER BY a.id FOR UPDATE"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [list(account_ids)])
        rows = cursor.fetchall()
    return {account.pk: account for account in map(_ACCOUNT.instance, rows)}


def accounts_lock_ids(*, account_ids: list[int]) -> list[int]:
    """The locks of ``accounts_lock`` (same rows, same pk order) without loading the accounts, for set-based
    jobs whose SQL never reads them: for a 5,000-lot expiry chunk, building the accounts with their customers
    took longer than the chunk's whole statement (docs/performance.md)."""
    return list(
        Account.objects.select_for_update().filter(pk__in=account_ids).order_by("pk").values_list("pk", flat=True)
    )


@cache
def _customer_lock_sql() -> str:
    quote = connection.ops.quote_name
    entries, accounts = quote(Entry._meta.db_table), quote(Account._meta.db_table)
    customers, types = quote(Customer._meta.db_table), quote(BalanceType._meta.db_table)
    return (
        f"SELECT {_ACCOUNT.columns('a')}, {_CUSTOMER.columns('c')}, {_BALANCE_TYPE.columns('t')}, "
        f"EXISTS (SELECT 1 FROM {entries} AS e WHERE e.operation_key = %s AND e.operation_seq = 0) "
        f"FROM {accounts} AS a JOIN {customers} AS c ON c.id = a.customer_id "
        f"JOIN {types} AS t ON t.id = a.balance_type_id WHERE a.customer_id = %s AND t.code = %s FOR UPDATE OF a"
    )


def _customer_account_locked(customer_id: int, balance_type: str, key: str | None) -> Account | None:
    """``_locking(key).filter(customer_id=..., balance_type__code=...).first()`` as a plain statement (PostgreSQL):
    every accrual and order placement locks so, and building the ORM's annotated join cost more than running it."""
    if connection.vendor != "postgresql":
        return _locking(key).filter(customer_id=customer_id, balance_type__code=balance_type).first()
    with connection.cursor() as cursor:
        cursor.execute(_customer_lock_sql(), [key or "", customer_id, balance_type])
        row = cursor.fetchone()
    if row is None:
        return None
    split, types_at = len(_ACCOUNT.fields), len(_ACCOUNT.fields) + len(_CUSTOMER.fields)
    account = _ACCOUNT.instance(row[:split])
    Account.customer.field.set_cached_value(account, _CUSTOMER.instance(row[split:types_at]))
    Account.balance_type.field.set_cached_value(account, _BALANCE_TYPE.instance(row[types_at:-1]))
    if key is not None:
        account.key_used = row[-1]
    return account


def account_lock_for_customer(*, customer_id: int, balance_type: str, key: str | None = None) -> Account:
    """Lock the customer's account of ``balance_type``, creating it on first use. Caller is in a transaction."""
    account = _customer_account_locked(customer_id, balance_type, key)
    if account is not None:
        if not getattr(account, "key_used", False):  # a repeat replays what was done before any merge
            _refuse_merged(customer_id)
        return account
    type_id = BalanceType.objects.values_list("pk", flat=True).filter(code=balance_type).first()
    if type_id is None:
        raise UnknownBalanceType(extra={"balance_type": balance_type})
    try:
        with transaction.atomic():
            Account.objects.create(customer_id=customer_id, balance_type_id=type_id)
    except IntegrityError:
        pass  # created concurrently: lock theirs
    account = _locking(key).get(customer_id=customer_id, balance_type_id=type_id)
    _refuse_merged(customer_id)
    return account


_MERGED_INTO = Customer.merged_into.field.column


def _refuse_merged(customer_id: int) -> None:
    """A merged duplicate's points live on its survivor: nothing is booked on its account any more. Checked
    after the account lock, in a statement of its own, so that a call which waited for the lock while a merge
    moved the points sees the merge (the locking statement's snapshot predates it)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {_MERGED_INTO} FROM {Customer._meta.db_table} WHERE id = %s", [customer_id])
        row = cursor.fetchone()
    merged_into = row[0] if row is not None else None
    if merged_into is not None:
        raise CustomerMerged(extra={"customer_id": customer_id, "merged_into": merged_into})
