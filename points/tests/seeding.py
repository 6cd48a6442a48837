"""Many consistent ledger rows at once, for the race and crash tests (PostgreSQL only).

Going through ``points_accrue`` costs a few milliseconds a lot; these tests need thousands. One statement
writes, per lot, exactly what an active accrual writes: the lot, its ``accrue`` entry and allocation, and
the account total — so ``points_reconcile`` is clean before the test starts.
"""

from datetime import datetime
from decimal import Decimal
from itertools import count

from django.db import connection

from customers.models import Customer
from points.models import Account, BalanceType

_phones = count(1)

SEED_SQL = """
WITH lots AS (
    INSERT INTO points_lot (account_id, kind, amount, remaining, held, state, available_from, expires_at,
                            lifetime_days, restriction, source_type, source_id, created_at)
    SELECT account.id, 'purchase', %(amount)s, %(amount)s, 0, 'active', NULL, %(expires_at)s,
           365, '', '', '', %(now)s
    FROM unnest(%(accounts)s::bigint[]) AS account(id), generate_series(1, %(per_account)s)
    RETURNING id, account_id, amount
), entries AS (
    INSERT INTO points_entry (account_id, kind, amount, available_delta, pending_delta, held_delta, debt_delta,
                              operation_key, operation_seq, fingerprint, reason, created_at)
    SELECT account_id, 'accrue', amount, amount, 0, 0, 0, 'seed:lot:' || id, 0, '', '', %(now)s
    FROM lots
    RETURNING id, operation_key
), allocations AS (
    INSERT INTO points_allocation (entry_id, lot_id, remaining_delta, held_delta)
    SELECT entries.id, lots.id, lots.amount, 0
    FROM lots JOIN entries ON entries.operation_key = 'seed:lot:' || lots.id
)
UPDATE points_account SET available = available + sums.points
FROM (SELECT account_id, SUM(amount) AS points FROM lots GROUP BY account_id) AS sums
WHERE points_account.id = sums.account_id
"""


def seed_accounts(*, accounts: int, now: datetime, balance_type: str = "retail") -> list[Account]:
    """``accounts`` new members, each with an empty points account."""
    customers = Customer.objects.bulk_create(
        Customer(phone=f"+7999{next(_phones):07d}", membership=Customer.Membership.MEMBER, joined_at=now)
        for _ in range(accounts)
    )
    type_ = BalanceType.objects.get(code=balance_type)
    return Account.objects.bulk_create(Account(customer=customer, balance_type=type_) for customer in customers)


def seed_lots(
    *, accounts: list[Account], lots_per_account: int, amount: Decimal, expires_at: datetime, now: datetime
) -> None:
    """Accrue ``lots_per_account`` active lots of ``amount`` points expiring at ``expires_at`` to every account."""
    with connection.cursor() as cursor:
        cursor.execute(
            SEED_SQL,
            {
                "accounts": [account.pk for account in accounts],
                "per_account": lots_per_account,
                "amount": amount,
                "expires_at": expires_at,
                "now": now,
            },
        )
