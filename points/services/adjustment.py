"""Manual corrections by staff or a channel with the right scope (F-STAFF-3)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from customers.models import Customer
from points.exceptions import InvalidAmount
from points.locks import account_lock_for_customer
from points.models import ZERO, Entry, Lot, LotKind
from points.services.journal import (
    Actor,
    Journal,
    PointsOperation,
    fingerprint,
    points_amount,
    replay,
    replays_a_raced_key,
    require_reason,
    signed_points_amount,
)
from points.services.lifetimes import expiry_from, lifetime_days
from points.services.spending import spendable_lots, take_soonest_expiring
from staff.models import AuditRecord
from staff.services import audit_record


@replays_a_raced_key
def points_adjust(
    *,
    customer: Customer,
    amount: Decimal | int | str,
    operation_key: str,
    actor: Actor,
    reason: str,
    balance_type: str | None = None,
    expires_at: datetime | None = None,
    now: datetime | None = None,
) -> PointsOperation:
    """Add (positive ``amount``: a new active lot of kind manual) or remove (negative: from spendable lots,
    soonest-expiring first, restrictions ignored) points. Actor and reason are mandatory (``ReasonRequired``);
    removal past the spendable total is ``InsufficientPoints``. Locks the account; idempotent by key. A staff
    user's adjustment is also in the audit trail (F-STAFF-3), in the same transaction: the balances it changed.
    """
    require_reason(actor, reason)
    try:
        signed = signed_points_amount(amount)
        magnitude = points_amount(abs(signed))
    except ArithmeticError:  # not a number at all ("abc"): the same answer as any other bad amount
        raise InvalidAmount() from None
    balance_type = balance_type or settings.POINTS_DEFAULT_BALANCE_TYPE
    now = now or timezone.now()
    key_print = fingerprint(
        op="adjust", customer=customer.pk, amount=signed, balance_type=balance_type, expires_at=expires_at
    )
    with transaction.atomic():
        account = account_lock_for_customer(customer_id=customer.pk, balance_type=balance_type, key=operation_key)
        if account.key_used:
            return replay(key=operation_key, fingerprint_=key_print)
        before = _balances(account)
        journal = Journal(
            account=account, key=operation_key, fingerprint_=key_print, now=now, actor=actor, reason=reason
        )
        if signed > 0:
            lot = Lot.objects.create(
                account=account,
                kind=LotKind.MANUAL,
                amount=magnitude,
                remaining=ZERO,
                state=Lot.State.ACTIVE,
                expires_at=expires_at
                or expiry_from(now, lifetime_days(balance_type=account.balance_type, kind=LotKind.MANUAL)),
                source_type="staff" if actor.user else "channel",
                created_at=now,
            )
            journal.entry(Entry.Kind.ADJUST, magnitude, available=magnitude, lots=[(lot, magnitude, ZERO)])
            journal.settle_debt_from(lot)
            operation = journal.flush(lot=lot)
        else:
            taken = take_soonest_expiring(spendable_lots(account=account, now=now, ignore_restrictions=True), magnitude)
            journal.entry(
                Entry.Kind.ADJUST, magnitude, available=-magnitude, lots=[(lot, -part, ZERO) for lot, part in taken]
            )
            operation = journal.flush()
        after = _balances(journal.account)
        changed = [name for name in after if after[name] != before[name]]
        audit_record(
            actor=actor,
            action=AuditRecord.Action.POINTS_ADJUST,
            target=operation.entries[0],
            reason=reason,
            before={"balance_type": balance_type, **{name: before[name] for name in changed}},
            after={"balance_type": balance_type, **{name: after[name] for name in changed}},
            customer_id=customer.pk,
            now=now,
        )
        return operation


def _balances(account) -> dict[str, Decimal]:
    return {name: getattr(account, name) for name in ("available", "pending", "held", "debt")}
