"""Writes of programmes and tiers (SPEC F-TIER-1, F-TIER-2, F-TIER-5).

The tier of a customer changes only here, always under the lock of its ``CustomerTier`` row (one row per customer
and programme, ``select_for_update``; the recalculation locks a chunk of rows in customer order) and always with a
``TierChange`` history row. The rules:

- an upgrade happens as soon as a confirmed purchase qualifies (``purchase_record`` → ``tier_upgrade_if_qualified``)
  and in the recalculation;
- a downgrade happens only in the periodic recalculation (``tiers_recalculate``), and only once the customer has been
  below the tier's threshold for ``Programme.downgrade_grace_days`` (counted from ``below_threshold_since``, set when
  first found below and cleared when back above); the customer drops to the tier the purchases qualify for;
- a manual tier is a floor until ``manual_until``: never downgraded before then, but a qualifying purchase still
  upgrades (and ends the manual assignment). When it expires, the recalculation moves the customer to the tier their
  purchases qualify for (reason ``manual_expired``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.utils import timezone

from core.actors import SYSTEM, Actor
from core.sql import insert_unless_taken
from customers.models import Customer
from points.services.journal import require_reason
from programmes.exceptions import ProgrammeNotFound, PurchaseRecordConflict, TierAssignmentInvalid
from programmes.models import CustomerTier, Programme, PurchaseRecord, Tier, TierChange
from programmes.rulebook import tiers_for
from programmes.selectors import (
    PROGRAMME_OF_KIND_SQL,
    ZERO,
    programme_from_row,
    programme_of_kind,
    programme_tiers,
    qualification_window_start,
    qualified_tier,
    qualifying_purchases,
)
from staff.models import AuditRecord
from staff.services import audit_record

UPGRADED = "upgraded"
DOWNGRADED = "downgraded"
MANUAL_EXPIRED = "manual_expired"
GRACE_STARTED = "grace_started"
GRACE_CLEARED = "grace_cleared"


# --- purchases -----------------------------------------------------------------------------------------------


def purchase_record(
    *,
    customer: Customer,
    amount: Decimal | int | str,
    occurred_at: datetime,
    source_type: str,
    source_id: str,
    programme: Programme | None = None,
    now: datetime | None = None,
) -> PurchaseRecord:
    """Record a confirmed purchase (positive ``amount``) or a return (negative) for tier qualification, then
    upgrade the customer at once if it qualifies (``tier_upgrade_if_qualified``; never a downgrade).

    ``programme`` defaults to the programme of the customer's kind. Idempotent by (programme, ``source_type``,
    ``source_id``), backed by a unique constraint: a repeat returns the stored record and changes nothing; the
    same source with another customer or amount is ``purchase_record_conflict``. Runs in the caller's
    transaction if there is one (orders record the purchase with the order)."""
    amount = _money(amount)
    if not source_type or not source_id:
        raise ValueError("purchase_record needs a source_type and a source_id")
    if programme is None and connection.vendor != "postgresql":
        programme = programme_of_kind(kind=customer.kind)  # on PostgreSQL: read by the record's insert
    record = PurchaseRecord(
        customer=customer,
        programme=programme,
        amount=amount,
        occurred_at=occurred_at,
        source_type=source_type,
        source_id=source_id,
    )
    # No savepoint of its own inside the caller's transaction (two statements less on the orders' hot path): the
    # record and the upgrade stand or fall with the caller's change.
    with transaction.atomic(savepoint=False):
        if programme is None:
            programme, inserted = _insert_with_programme(record, customer.kind)
        else:
            inserted = insert_unless_taken(record)
        if inserted and programme.is_active and amount > 0:
            _upgrade(customer_id=customer.pk, programme=programme, now=now or timezone.now())
    if programme is None:  # raised here, not inside the block: the caller's transaction stays usable
        raise ProgrammeNotFound()
    if not inserted:
        record = PurchaseRecord.objects.get(programme=programme, source_type=source_type, source_id=source_id)
        if record.customer_id != customer.pk or record.amount != amount:
            raise PurchaseRecordConflict(extra={"purchase_record_id": record.pk})
    return record


_RECORD_FIELDS = [field for field in PurchaseRecord._meta.concrete_fields if not field.primary_key]
# The programme of the customer's kind read and the record inserted under its id by one statement: every delivery
# and return records a purchase, and the programme's read was a round trip of its own.
RECORD_WITH_PROGRAMME_SQL = (
    "WITH p AS ({programme}), "
    "record AS (INSERT INTO {table} ({columns}) SELECT {values} FROM p ON CONFLICT DO NOTHING RETURNING id) "
    "SELECT p.*, (SELECT id FROM record) FROM p"
).format(
    programme=PROGRAMME_OF_KIND_SQL,
    table=PurchaseRecord._meta.db_table,
    columns=", ".join(f'"{field.column}"' for field in _RECORD_FIELDS),
    values=", ".join("p.id" if field.name == "programme" else "%s" for field in _RECORD_FIELDS),
)


def _insert_with_programme(record: PurchaseRecord, kind: str) -> tuple[Programme | None, bool]:
    """``programme_of_kind`` and ``insert_unless_taken(record)`` under it, in one statement (PostgreSQL): the
    programme (None: there is none of ``kind``, and nothing was inserted), and whether the record was inserted (not
    if its source was recorded before)."""
    values = [
        field.get_db_prep_save(field.pre_save(record, True), connection)
        for field in _RECORD_FIELDS
        if field.name != "programme"
    ]
    with connection.cursor() as cursor:
        cursor.execute(RECORD_WITH_PROGRAMME_SQL, [kind, *values])
        row = cursor.fetchone()
    if row is None:
        return None, False
    programme = programme_from_row(row[:-1])
    record.programme = programme
    if row[-1] is None:
        return programme, False
    record.pk = row[-1]
    record._state.adding = False
    record._state.db = connection.alias
    return programme, True


def _money(value: Decimal | int | str) -> Decimal:
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        raise ValueError(f"not an amount of money: {value!r}") from None
    if not amount.is_finite():
        raise ValueError(f"not an amount of money: {value!r}")
    return amount


# --- one customer ----------------------------------------------------------------------------------------------


def tier_upgrade_if_qualified(*, customer: Customer, programme: Programme, now: datetime | None = None) -> CustomerTier:
    """Upgrade the customer to the highest tier their purchases in the window qualify for, if it is above the
    current one; never downgrades. Locks (or creates, with an ``initial`` history row) the customer's
    ``CustomerTier`` row first and reads the purchases after locking. Idempotent: a second call changes nothing."""
    with transaction.atomic():
        return _upgrade(customer_id=customer.pk, programme=programme, now=now or timezone.now())


def _upgrade(*, customer_id: int, programme: Programme, now: datetime) -> CustomerTier:
    """``tier_upgrade_if_qualified`` in the caller's transaction (no savepoint: ``purchase_record``'s stands or
    falls with the caller's change anyway). The tiers come from the per-process cache of the programme's rules
    version (``programmes.rulebook``)."""
    tiers = list(tiers_for(programme))
    if not tiers:
        raise ProgrammeNotFound()
    row = _lock_row(customer_id=customer_id, programme=programme, tiers=tiers, now=now)
    if row.tier.pk == tiers[-1].pk and row.below_threshold_since is None:
        # At the top with no grace running, ``_settle`` changes nothing whatever the total (outside the
        # recalculation): the row stays locked, the sum is not needed.
        return row
    total = qualifying_purchases(customer_id=customer_id, programme=programme, now=now)
    _settle(row, tiers, total, now, recalculation=False)
    return row


def tier_assign_manual(
    *,
    customer: Customer,
    tier: Tier,
    actor: Actor,
    reason: str,
    until: datetime | None = None,
    now: datetime | None = None,
) -> CustomerTier:
    """Staff put a customer in ``tier`` with a reason (``reason_required`` without one or without a known actor),
    until ``until`` (exclusive; None: until changed by staff). The recalculation will not lower the customer
    below it before then; a qualifying purchase may still upgrade. Locks the customer's tier row; writes a
    ``manual`` history row with the actor and the reason, and (a staff user's) audit record: tier, manual flag
    and end before and after."""
    require_reason(actor, reason)
    now = now or timezone.now()
    programme = tier.programme
    if programme.customer_kind != customer.kind:
        raise TierAssignmentInvalid(extra={"programme": programme.code})
    if until is not None and until <= now:
        raise TierAssignmentInvalid(extra={"until": until.isoformat()})
    tiers = _tiers(programme)
    with transaction.atomic():
        row = _lock_row(customer_id=customer.pk, programme=programme, tiers=tiers, now=now)
        before = _manual_state(row)
        _move(row, tier, now, TierChange.Reason.MANUAL, note=reason.strip(), actor=actor)
        row.manual, row.manual_until, row.below_threshold_since = True, until, None
        row.save()
        after = _manual_state(row)
        changed = [name for name in after if after[name] != before[name]]
        audit_record(
            actor=actor,
            action=AuditRecord.Action.TIER_CHANGE,
            target=row,
            reason=reason,
            before={"programme": programme.code, **{name: before[name] for name in changed}},
            after={"programme": programme.code, **{name: after[name] for name in changed}},
            customer_id=customer.pk,
            now=now,
        )
    return row


def _manual_state(row: CustomerTier) -> dict:
    return {"tier": row.tier.code, "manual": row.manual, "manual_until": row.manual_until}


def _tiers(programme: Programme) -> list[Tier]:
    tiers = programme_tiers(programme=programme)
    if not tiers:
        raise ProgrammeNotFound()
    return tiers


def _lock_row(*, customer_id: int, programme: Programme, tiers: list[Tier], now: datetime) -> CustomerTier:
    """The customer's tier row, locked; created in the entry tier (with an ``initial`` history row) if missing."""
    row = _row_locked(customer_id, programme.pk)
    if row is None:
        try:
            with transaction.atomic():
                row = CustomerTier.objects.create(
                    customer_id=customer_id, programme=programme, tier=tiers[0], since=now
                )
        except IntegrityError:  # created concurrently: wait for it
            row = CustomerTier.objects.select_for_update().get(customer_id=customer_id, programme=programme)
        else:
            _history(row, None, tiers[0], now, TierChange.Reason.INITIAL)
    row.tier = next(tier for tier in tiers if tier.pk == row.tier_id)
    row.programme = programme
    return row


_ROW_FIELDS = [field.attname for field in CustomerTier._meta.concrete_fields]
ROW_LOCK_SQL = (
    "SELECT {columns} FROM programmes_customertier WHERE customer_id = %s AND programme_id = %s FOR UPDATE"
).format(columns=", ".join(f'"{field.column}"' for field in CustomerTier._meta.concrete_fields))


def _row_locked(customer_id: int, programme_id: int) -> CustomerTier | None:
    """``CustomerTier.objects.select_for_update().filter(...).first()`` as a plain statement on PostgreSQL (the
    purchase path runs it for every delivery; building it through the ORM cost more than running it). One row at
    most (unique per customer and programme); its fields need no conversion (ids, dates, a flag)."""
    if connection.vendor != "postgresql":
        return (
            CustomerTier.objects.select_for_update().filter(customer_id=customer_id, programme_id=programme_id).first()
        )
    with connection.cursor() as cursor:
        cursor.execute(ROW_LOCK_SQL, [customer_id, programme_id])
        values = cursor.fetchone()
    return None if values is None else CustomerTier.from_db(connection.alias, _ROW_FIELDS, values)


def _settle(row: CustomerTier, tiers: list[Tier], total: Decimal, now: datetime, *, recalculation: bool) -> str | None:
    """Apply the tier rules to a locked row given the qualifying total; returns what happened."""
    current = row.tier
    target = qualified_tier(tiers, total)
    if recalculation and row.manual and row.manual_until is not None and row.manual_until <= now:
        _move(row, target, now, TierChange.Reason.MANUAL_EXPIRED, force=True)
        row.manual, row.manual_until, row.below_threshold_since = False, None, None
        row.save()
        return MANUAL_EXPIRED
    if target.rank > current.rank:
        _move(row, target, now, TierChange.Reason.UPGRADE)
        row.manual, row.manual_until, row.below_threshold_since = False, None, None
        row.save()
        return UPGRADED
    if total >= current.qualification_threshold or row.manual_active(now):
        if row.below_threshold_since is None:
            return None
        row.below_threshold_since = None
        row.save()
        return GRACE_CLEARED
    if not recalculation:
        return None
    outcome = None
    if row.below_threshold_since is None:
        row.below_threshold_since, outcome = now, GRACE_STARTED
    if now >= row.below_threshold_since + timedelta(days=row.programme.downgrade_grace_days):
        _move(row, target, now, TierChange.Reason.DOWNGRADE)
        row.below_threshold_since, outcome = None, DOWNGRADED
    row.save()
    return outcome


def _move(
    row: CustomerTier,
    tier: Tier,
    now: datetime,
    reason: str,
    *,
    note: str = "",
    actor: Actor = SYSTEM,
    force: bool = False,
) -> None:
    """Point the row at ``tier`` (caller saves) and record the change; a manual or forced change is recorded
    even when the tier stays the same (the manual flag changes)."""
    before = row.tier
    if tier.pk == before.pk and not force and reason != TierChange.Reason.MANUAL:
        return
    _history(row, before, tier, now, reason, note=note, actor=actor)
    if tier.pk != before.pk:
        row.tier, row.since = tier, now


def _history(
    row: CustomerTier,
    before: Tier | None,
    after: Tier,
    now: datetime,
    reason: str,
    *,
    note: str = "",
    actor: Actor = SYSTEM,
) -> TierChange:
    return TierChange.objects.create(
        customer_id=row.customer_id,
        programme_id=row.programme_id,
        from_tier=before,
        to_tier=after,
        reason=reason,
        note=note,
        actor_user=actor.user,
        actor_channel=actor.channel,
        created_at=now,
    )


# --- the periodic recalculation --------------------------------------------------------------------------------


@dataclass
class RecalculationResult:
    customers: int = 0
    chunks: int = 0
    outcomes: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys((UPGRADED, DOWNGRADED, MANUAL_EXPIRED, GRACE_STARTED, GRACE_CLEARED), 0)
    )

    @property
    def changed(self) -> int:
        return sum(self.outcomes.values())


def tiers_recalculate(
    *, programme: Programme, now: datetime | None = None, chunk_size: int = 1000
) -> RecalculationResult:
    """Recalculate the tiers of every customer of the programme who has a tier row or purchases: upgrades,
    downgrades after the grace period, expiry of manual assignments (see the module docstring).

    Works in chunks of ``chunk_size`` customers by customer pk, one transaction per chunk, locking the chunk's rows
    in pk order (the purchase path locks one row, so the two cannot deadlock) and summing the chunk's purchases in
    one query after locking. Idempotent: a second run with the same ``now`` changes nothing; safe to run
    concurrently (the second run waits for the rows and finds nothing to do)."""
    now = now or timezone.now()
    tiers = _tiers(programme)
    result = RecalculationResult()
    after = 0
    while True:
        customer_ids = _next_chunk(programme, after, chunk_size)
        if not customer_ids:
            break
        with transaction.atomic():
            _recalculate_chunk(programme, tiers, customer_ids, now, result)
        result.chunks += 1
        result.customers += len(customer_ids)
        after = customer_ids[-1]
    return result


def _next_chunk(programme: Programme, after: int, size: int) -> list[int]:
    with_rows = (
        CustomerTier.objects.filter(programme=programme, customer_id__gt=after)
        .order_by("customer_id")
        .values_list("customer_id", flat=True)[:size]
    )
    with_purchases = (
        PurchaseRecord.objects.filter(programme=programme, customer_id__gt=after)
        .order_by("customer_id")
        .values_list("customer_id", flat=True)
        .distinct()[:size]
    )
    return sorted({*with_rows, *with_purchases})[:size]


def _recalculate_chunk(
    programme: Programme, tiers: list[Tier], customer_ids: list[int], now: datetime, result: RecalculationResult
) -> None:
    rows = {
        row.customer_id: row
        for row in CustomerTier.objects.select_for_update()
        .filter(programme=programme, customer_id__in=customer_ids)
        .order_by("customer_id")
    }
    for customer_id in customer_ids:
        if customer_id not in rows:
            rows[customer_id] = _lock_row(customer_id=customer_id, programme=programme, tiers=tiers, now=now)
    totals = dict(
        PurchaseRecord.objects.filter(
            programme=programme,
            customer_id__in=customer_ids,
            occurred_at__gt=qualification_window_start(programme=programme, now=now),
            occurred_at__lte=now,
        )
        .values("customer_id")
        .annotate(total=Sum("amount"))
        .values_list("customer_id", "total")
    )
    by_pk = {tier.pk: tier for tier in tiers}
    for customer_id in customer_ids:
        row = rows[customer_id]
        row.tier, row.programme = by_pk[row.tier_id], programme
        outcome = _settle(row, tiers, totals.get(customer_id) or ZERO, now, recalculation=True)
        if outcome is not None:
            result.outcomes[outcome] += 1
