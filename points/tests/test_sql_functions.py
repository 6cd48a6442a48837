"""The PL/pgSQL versions of redeem, hold and commit (points 0009) against the Python versions: the same rows, the
same results and the same refusals, case by case. (The property test drives both through random sequences.)

Each case runs twice on identical fresh customers, once per version, and compares what each left in the database
and returned, with ids and keys replaced by their order of appearance.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from customers.models import Customer
from customers.services.merge import customer_merge
from customers.tests.factories import CustomerFactory
from points.exceptions import PointsError
from points.models import Allocation, Entry, Hold, Lot
from points.services import (
    Actor,
    points_accrue,
    points_expire_due,
    points_hold,
    points_hold_commit,
    points_redeem,
)
from points.services.sql import sql_functions_enabled
from points.tests.helpers import assert_consistent

# The PL/pgSQL functions exist on PostgreSQL only; elsewhere there is just the Python version to run.
pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the ledger's SQL functions are PostgreSQL's"),
]

NOW = timezone.now().replace(microsecond=0)
IMPLEMENTATIONS = {"sql_functions": True, "python": False}


def given_lots(customer: Customer, *specs: tuple) -> None:
    """Lots of (amount, days to expiry or None, restriction)."""
    for number, (amount, days, restriction) in enumerate(specs):
        points_accrue(
            customer=customer,
            amount=amount,
            kind="purchase",
            operation_key=f"given:{customer.pk}:{number}",
            expires_at=None if days is None else NOW + timedelta(days=days),
            restriction=restriction,
            now=NOW - timedelta(days=1),
        )


def state_of(customer: Customer) -> dict:
    """The customer's ledger rows with ids renumbered by order of appearance."""
    lots = list(Lot.objects.filter(account__customer=customer).order_by("pk"))
    lot_number = {lot.pk: n for n, lot in enumerate(lots)}
    holds = {hold.pk: n for n, hold in enumerate(Hold.objects.filter(account__customer=customer).order_by("pk"))}
    entries = list(Entry.objects.filter(account__customer=customer).order_by("pk"))
    entry_number = {entry.pk: n for n, entry in enumerate(entries)}
    allocations = Allocation.objects.filter(entry__account__customer=customer).order_by("pk")
    return {
        "accounts": sorted(
            (a.balance_type.code, a.available, a.pending, a.held, a.debt) for a in customer.point_accounts.all()
        ),
        "lots": [(lot.remaining, lot.held, lot.state, lot.expires_at) for lot in lots],
        "holds": [
            (h.amount, h.state, h.expires_at, h.closed_at) for h in Hold.objects.filter(pk__in=holds).order_by("pk")
        ],
        "entries": [
            (
                *(e.kind, e.amount, e.available_delta, e.pending_delta, e.held_delta, e.debt_delta, e.operation_seq),
                *(bool(e.fingerprint), e.actor_channel_id, e.reason, holds.get(e.hold_id), e.created_at),
            )
            for e in entries
            if not e.operation_key.startswith("given:")
        ],
        "allocations": [
            (entry_number[a.entry_id], lot_number[a.lot_id], a.remaining_delta, a.held_delta)
            for a in allocations
            if a.entry_id in entry_number and not entries[entry_number[a.entry_id]].operation_key.startswith("given:")
        ],
    }


def outcome(run, customer: Customer):
    """What a call returned (or raised), renumbered like ``state_of``."""
    try:
        operation = run()
    except PointsError as error:
        return ("refused", type(error).__name__, error.extra)
    except Exception as error:  # a customer's error, such as CustomerMerged
        return ("refused", type(error).__name__, getattr(error, "extra", None))
    lot_pks = Lot.objects.filter(account__customer=customer).order_by("pk").values_list("pk", flat=True)
    lot_number = {pk: n for n, pk in enumerate(lot_pks)}
    return (
        "done",
        [(e.kind, e.amount, e.available_delta, e.held_delta, e.operation_seq) for e in operation.entries],
        {lot_number[pk]: points for pk, points in operation.allocations.items()},
        None if operation.hold is None else (operation.hold.amount, operation.hold.state),
        operation.replayed,
    )


def both(settings, case) -> dict:
    """Run ``case(customer)`` under each version on a fresh member; what each returned and left."""
    seen = {}
    for name, enabled in IMPLEMENTATIONS.items():
        settings.POINTS_LEDGER_SQL_FUNCTIONS = enabled
        assert sql_functions_enabled() is enabled
        customer = CustomerFactory(membership=Customer.Membership.MEMBER)
        results = case(customer)
        seen[name] = (results, state_of(customer))
    assert_consistent()
    return seen


def redeem(customer, amount, key="r", **kwargs):
    return points_redeem(customer=customer, amount=amount, operation_key=f"{key}:{customer.pk}", now=NOW, **kwargs)


def hold(customer, amount, key="h", **kwargs):
    return points_hold(customer=customer, amount=amount, operation_key=f"{key}:{customer.pk}", now=NOW, **kwargs)


def commit(customer, hold_id, amount=None, key="c", now=NOW):
    return points_hold_commit(hold_id=hold_id, amount=amount, operation_key=f"{key}:{customer.pk}", now=now)


def assert_same(seen: dict) -> None:
    assert seen["sql_functions"] == seen["python"]


REDEMPTIONS = {
    "across three lots, soonest-expiring first": ((100, 30, ""), (50, 10, ""), (70, None, "")),
    "exactly everything": ((100, 30, ""), (50, 10, "")),
    "one cent too many": ((100, 30, ""), (50, 10, "")),
    "first-order and members-only lots": ((100, 5, "first_order"), (50, 10, "members_only"), (20, 30, "")),
    "a lot past its expiry is not spent": ((100, -1, ""), (50, 10, "")),
}
AMOUNTS = {
    "across three lots, soonest-expiring first": Decimal("120.50"),
    "exactly everything": Decimal("150"),
    "one cent too many": Decimal("150.01"),
    "first-order and members-only lots": Decimal("60"),
    "a lot past its expiry is not spent": Decimal("50"),
}


@pytest.mark.parametrize("name", REDEMPTIONS)
@pytest.mark.parametrize("first_order", [False, True])
def test_a_redemption_is_the_same_in_both_versions(settings, name, first_order):
    def case(customer):
        given_lots(customer, *REDEMPTIONS[name])
        first = outcome(lambda: redeem(customer, AMOUNTS[name], first_order=first_order), customer)
        again = outcome(lambda: redeem(customer, AMOUNTS[name], first_order=first_order), customer)
        return first, again

    assert_same(both(settings, case))


@pytest.mark.parametrize("name", REDEMPTIONS)
def test_a_hold_and_its_commit_are_the_same_in_both_versions(settings, name):
    def case(customer):
        given_lots(customer, *REDEMPTIONS[name])
        held = []
        taken = outcome(lambda: held.append(hold(customer, AMOUNTS[name])) or held[0], customer)
        if not held:
            return (taken,)
        part = outcome(lambda: commit(customer, held[0].hold.pk, amount=AMOUNTS[name] - 1), customer)
        replayed = outcome(lambda: commit(customer, held[0].hold.pk, amount=AMOUNTS[name] - 1), customer)
        closed = outcome(lambda: commit(customer, held[0].hold.pk, key="c2"), customer)
        return taken, part, replayed, closed

    assert_same(both(settings, case))


def test_a_commit_after_a_held_lot_expired_spends_it_and_expires_the_rest_alike(settings):
    def case(customer):
        given_lots(customer, (100, 1, ""), (50, 10, ""))
        held = hold(customer, 120, timeout=timedelta(days=3))
        points_expire_due(now=NOW + timedelta(days=2))
        return outcome(lambda: commit(customer, held.hold.pk, amount=10, now=NOW + timedelta(days=2)), customer)

    seen = both(settings, case)
    assert seen["python"][0][0] == "done"
    assert [entry[0] for entry in seen["python"][0][1]] == ["redeem", "release", "expire"]
    assert_same(seen)


@pytest.mark.parametrize(
    "refusal",
    ["insufficient", "no account", "unknown balance type", "blocked", "merged", "timed out", "too much", "no hold"],
)
def test_refusals_are_the_same_in_both_versions(settings, refusal):
    def case(customer):
        given_lots(customer, (100, 30, ""))
        if refusal == "insufficient":
            return outcome(lambda: redeem(customer, 101), customer)
        if refusal == "no account":
            return outcome(lambda: hold(customer, 10, balance_type="b2b"), customer)
        if refusal == "unknown balance type":
            return outcome(lambda: hold(customer, 10, balance_type="nope"), customer)
        if refusal == "blocked":
            Customer.objects.filter(pk=customer.pk).update(membership=Customer.Membership.BLOCKED)
            customer.refresh_from_db()
            return outcome(lambda: redeem(customer, 1), customer)
        if refusal == "merged":
            staff = get_user_model().objects.create_user(f"merger{customer.pk}")
            customer_merge(
                duplicate=customer, survivor=CustomerFactory(), actor=Actor(user=staff), reason="test", now=NOW
            )
            return outcome(lambda: redeem(customer, 1), customer)
        if refusal == "no hold":
            return outcome(lambda: commit(customer, 10**9), customer)
        held = hold(customer, 40, timeout=timedelta(minutes=5))
        if refusal == "timed out":
            return outcome(lambda: commit(customer, held.hold.pk, now=NOW + timedelta(minutes=5)), customer)
        return outcome(lambda: commit(customer, held.hold.pk, amount=41), customer)

    seen = both(settings, case)
    assert seen["python"][0][0] == "refused", seen["python"]
    # Error details name the customer the case made: compare them without it.
    for result, _state in seen.values():
        if isinstance(result[2], dict):
            result[2].pop("customer_id", None)
            result[2].pop("merged_into", None)
    assert_same(seen)


@pytest.mark.parametrize("hold_id", [0, -1, 2**63 - 1, 2**63, 10**30])
def test_a_hold_id_out_of_range_is_not_found_in_both_versions(settings, hold_id):
    def case(customer):
        return outcome(lambda: commit(customer, hold_id), customer)

    seen = both(settings, case)
    assert seen["python"][0] == ("refused", "HoldNotFound", {})
    assert_same(seen)


# --- the plain lock statement of accruals -------------------------------------------------------------------------


def _row(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in type(instance)._meta.concrete_fields}


@pytest.mark.parametrize("key", [None, "seed-key", "unused-key"])
def test_the_plain_customer_lock_reads_what_the_orm_lock_reads(key):
    from django.db import transaction

    from points.locks import _customer_account_locked, _locking
    from points.services import points_accrue

    customer = CustomerFactory()
    points_accrue(customer=customer, amount="100", kind="manual", operation_key="seed-key")

    with transaction.atomic():
        plain = _customer_account_locked(customer.pk, "retail", key)
        orm = _locking(key).filter(customer_id=customer.pk, balance_type__code="retail").first()

    assert _row(plain) == _row(orm)
    assert _row(plain.customer) == _row(orm.customer)
    assert _row(plain.balance_type) == _row(orm.balance_type)
    assert getattr(plain, "key_used", None) == getattr(orm, "key_used", None)
    assert getattr(plain, "key_used", None) == (None if key is None else key == "seed-key")
    with transaction.atomic():
        assert _customer_account_locked(customer.pk, "b2b", key) is None
