"""Reads of programmes and tiers, shared by the API, the admin, the services and (later) the cart calculator."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from django.db import connection
from django.db.models import QuerySet, Sum
from django.utils import timezone

from catalog.models import Category
from customers.models import Customer
from integrations.models import Store
from programmes.exceptions import ProgrammeNotFound
from programmes.models import (
    CustomerTier,
    EarningRule,
    Programme,
    Promotion,
    PurchaseRecord,
    RedemptionRule,
    Tier,
    TierChange,
)

ZERO = Decimal("0")


def programme_for_customer(*, customer: Customer) -> Programme:
    """The programme of the customer's kind (retail or B2B); ``programme_not_found`` if there is none."""
    programme = Programme.objects.select_related("balance_type").filter(customer_kind=customer.kind).first()
    if programme is None:
        raise ProgrammeNotFound()
    return programme


PROGRAMME_OF_KIND_SQL = "SELECT {columns} FROM programmes_programme WHERE customer_kind = %s".format(
    columns=", ".join(f'"{field.column}"' for field in Programme._meta.concrete_fields)
)


def programme_of_kind(*, kind: str) -> Programme:
    """``programme_for_customer`` without the balance type (read on access), as a plain statement on PostgreSQL:
    the purchase path reads the programme (for its current rules version) on every delivery, and building the
    query through the ORM cost more than running it. One programme per kind (unique)."""
    if connection.vendor != "postgresql":
        programme = Programme.objects.filter(customer_kind=kind).first()
        if programme is None:
            raise ProgrammeNotFound()
        return programme
    with connection.cursor() as cursor:
        cursor.execute(PROGRAMME_OF_KIND_SQL, [kind])
        row = cursor.fetchone()
    if row is None:
        raise ProgrammeNotFound()
    return programme_from_row(row)


def programme_from_row(row) -> Programme:
    """The programme of a row of ``PROGRAMME_OF_KIND_SQL``'s columns (PostgreSQL)."""
    fields = Programme._meta.concrete_fields
    # As the ORM converts them (the JSON field arrives as text).
    values = [
        field.from_db_value(value, None, connection) if hasattr(field, "from_db_value") else value
        for field, value in zip(fields, row, strict=True)
    ]
    return Programme.from_db(connection.alias, [field.attname for field in fields], values)


def programme_tiers(*, programme: Programme) -> list[Tier]:
    """The programme's tiers by rank, the entry tier first."""
    return list(programme.tiers.order_by("rank"))


def qualification_window_start(*, programme: Programme, now: datetime) -> datetime:
    return now - relativedelta(months=programme.qualification_window_months)


def qualifying_purchases(*, customer_id: int, programme: Programme, now: datetime) -> Decimal:
    """Purchases net of returns in the programme's window ``(now - months, now]``. One query: a plain statement on
    PostgreSQL (every delivery runs it; the ORM took longer to build it than the database to answer)."""
    start = qualification_window_start(programme=programme, now=now)
    if connection.vendor != "postgresql":
        total = PurchaseRecord.objects.filter(
            customer_id=customer_id, programme=programme, occurred_at__gt=start, occurred_at__lte=now
        ).aggregate(total=Sum("amount"))["total"]
        return total or ZERO
    with connection.cursor() as cursor:
        # The dates as the ORM prepares them (a naive one is made aware, with its warning).
        occurred_at = PurchaseRecord._meta.get_field("occurred_at")
        bounds = [occurred_at.get_db_prep_value(value, connection) for value in (start, now)]
        cursor.execute(QUALIFYING_SUM_SQL, [customer_id, programme.pk, *bounds])
        (total,) = cursor.fetchone()
    return ZERO if total is None else Decimal(total)


QUALIFYING_SUM_SQL = (
    "SELECT SUM(amount) FROM programmes_purchaserecord"
    " WHERE customer_id = %s AND programme_id = %s AND occurred_at > %s AND occurred_at <= %s"
)


def qualified_tier(tiers: list[Tier], total: Decimal) -> Tier:
    """The highest-ranked tier whose threshold the total reaches (the entry tier at least)."""
    reached = [tier for tier in tiers if tier.qualification_threshold <= total]
    return max(reached, key=lambda tier: tier.rank) if reached else tiers[0]


def _virtual_entry(customer: Customer, programme: Programme, tiers: list[Tier]) -> CustomerTier:
    return CustomerTier(customer=customer, programme=programme, tier=tiers[0], since=None)


def customer_tier(*, customer: Customer, programme: Programme | None = None) -> CustomerTier:
    """The customer's current tier row; an unsaved row with the entry tier (``since`` None) when the customer
    has none yet. Writes nothing."""
    programme = programme or programme_for_customer(customer=customer)
    row = (
        CustomerTier.objects.select_related("tier", "programme").filter(customer=customer, programme=programme).first()
    )
    if row is not None:
        return row
    tiers = programme_tiers(programme=programme)
    if not tiers:
        raise ProgrammeNotFound()
    return _virtual_entry(customer, programme, tiers)


@dataclass(frozen=True)
class TierStatus:
    customer_tier: CustomerTier
    programme: Programme
    tier: Tier
    qualifying_purchases: Decimal
    next_tier: Tier | None
    purchases_needed: Decimal | None  # to reach next_tier; None at the top


def customer_tier_status(*, customer: Customer, now: datetime | None = None) -> TierStatus:
    """Everything the perks API answers about a customer's tier, in three queries: the programme's tiers (with
    the programme), the customer's tier row, and the qualifying sum."""
    now = now or timezone.now()
    tiers = list(
        Tier.objects.select_related("programme").filter(programme__customer_kind=customer.kind).order_by("rank")
    )
    if not tiers:
        raise ProgrammeNotFound()
    programme = tiers[0].programme
    by_pk = {tier.pk: tier for tier in tiers}
    row = CustomerTier.objects.filter(customer=customer, programme=programme).first()
    if row is None:
        row = _virtual_entry(customer, programme, tiers)
    tier = by_pk[row.tier_id]
    row.tier, row.programme = tier, programme
    total = qualifying_purchases(customer_id=customer.pk, programme=programme, now=now)
    next_tier = next((candidate for candidate in tiers if candidate.rank > tier.rank), None)
    needed = max(next_tier.qualification_threshold - total, ZERO) if next_tier is not None else None
    return TierStatus(
        customer_tier=row,
        programme=programme,
        tier=tier,
        qualifying_purchases=total,
        next_tier=next_tier,
        purchases_needed=needed,
    )


def tier_history(*, customer: Customer) -> QuerySet[TierChange]:
    return TierChange.objects.filter(customer=customer).select_related("from_tier", "to_tier", "programme")


def customer_tier_code(*, customer: Customer) -> str | None:
    """Just the code of the customer's tier (the entry tier's without a tier row; None without a programme), in
    one query for a customer with a tier row, two without: for answers that only name the tier."""
    code = (
        CustomerTier.objects.filter(customer=customer, programme__customer_kind=customer.kind)
        .values_list("tier__code", flat=True)
        .first()
    )
    if code is None:
        code = (
            Tier.objects.filter(programme__customer_kind=customer.kind)
            .order_by("rank")
            .values_list("code", flat=True)
            .first()
        )
    return code


def rules_naming(target: Tier | Store | Category) -> list:
    """The earning and redemption rules and promotions whose conditions name this tier, store or category."""
    field = {Tier: "tiers", Store: "stores", Category: "categories"}[type(target)]
    return [
        rule
        for model in (EarningRule, RedemptionRule, Promotion)
        for rule in model.objects.filter(**{field: target}).order_by("pk")
    ]
