"""Shorthands for ledger tests: amounts as Decimals, the default account, the reconcile assertion."""

from decimal import Decimal
from itertools import count

from points.models import Account
from points.services import points_reconcile

_keys = count(1)


def key(prefix: str = "op") -> str:
    return f"test:{prefix}:{next(_keys)}"


def D(value) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def account_of(customer, balance_type: str = "retail") -> Account:
    return Account.objects.get(customer=customer, balance_type__code=balance_type)


def buckets(customer, balance_type: str = "retail") -> tuple[Decimal, Decimal, Decimal, Decimal]:
    account = account_of(customer, balance_type)
    return account.available, account.pending, account.held, account.debt


def assert_consistent() -> None:
    problems = points_reconcile()
    assert problems == [], problems
