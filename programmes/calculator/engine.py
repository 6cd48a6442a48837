"""The cart calculator (SPEC F-ORD-2, F-RED-4): what a cart earns and how much of it may be paid in points, line by
line, with the rules that decided. It writes nothing.

Per line:
- amount = price times quantity less the shelf discount (to the cent);
- earning: the tier's rate, or the deciding earning rule (highest priority; "no points" is a rule too); nothing for
  a product excluded from earning; times the largest applicable promotion multiplier; on the part paid with money
  unless the programme says otherwise; rounded per line by the programme's policy (default: down to whole points);
- redemption: the smallest of the applicable caps — the product's exclusion, prohibitions, the rules' shares of the
  price or of the spendable balance, the tier's share of the price — and the spendable balance, rounded down to
  whole points. The cart's maximum is the sum of the lines' limited again by the spendable balance.

The spendable balance follows the ledger's spending rules (``points.services.spending``): nothing for a blocked
customer, members-only points only for members, welcome points (first order only) only on the first order.

``at`` given: the calculation is redone as of that moment — the rules, promotions and tier terms then in force and
the tier the customer had then (from the tier history). The balance is today's unless ``spendable_balance`` is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from django.db import connection
from django.utils import timezone

from catalog.models import PATH_SEPARATOR
from core.sql import RowReader, uses_arrays
from customers.models import Customer
from integrations.models import Channel, Store
from programmes.calculator import explain
from programmes.calculator.explain import Explanation
from programmes.calculator.lines import CartLine, validate_lines
from programmes.exceptions import ProgrammeNotFound, RedemptionAboveMaximum
from programmes.models import Programme, Rounding, Tier, TierChange, TierTerms
from programmes.rulebook import LineFacts, Rulebook, rulebook_for

ZERO = Decimal("0")
CENT = Decimal("0.01")
WHOLE = Decimal("1")
HUNDRED = Decimal("100")
_NOTHING_SPENDABLE = {"anonymous", "customer_blocked", "not_a_member"}


@dataclass
class LineResult:
    index: int
    sku: str
    name: str
    product_known: bool
    category: str | None
    operation_type: str
    quantity: Decimal
    price: Decimal
    discount_percent: Decimal
    discount: Decimal
    amount: Decimal
    max_redeemable: Decimal
    redemption_limit: Explanation
    redemption_caps: list[Explanation]
    redeem: Decimal
    earn_points: Decimal
    earn_rate_percent: Decimal
    earn_multiplier: Decimal
    earning: list[Explanation]


@dataclass
class CartResult:
    customer_id: int | None
    programme: str
    balance_type: str
    tier: str
    at: datetime
    first_order: bool
    spendable_balance: Decimal
    lines: list[LineResult] = field(default_factory=list)
    total_price: Decimal = ZERO
    total_discount: Decimal = ZERO
    total_amount: Decimal = ZERO
    max_redeemable: Decimal = ZERO
    max_redeemable_limit: Explanation | None = None
    redeem: Decimal = ZERO
    earn_points: Decimal = ZERO
    unlock_on_payment: tuple[str, ...] = ()  # the programme's operation types whose points unlock on payment


@dataclass(frozen=True)
class _Product:
    name: str
    known: bool
    category: str | None
    category_codes: frozenset[str]
    new_arrival: bool
    excluded_from_earning: bool
    excluded_from_redemption: bool


@dataclass(frozen=True)
class _Terms:
    earn_rate_percent: Decimal
    max_redemption_percent: Decimal


def cart_calculate(
    *,
    customer: Customer | None,
    lines: list[CartLine],
    channel: Channel | None = None,
    store: Store | None = None,
    at: datetime | None = None,
    redeem: Decimal | int | str | None = None,
    first_order: bool | None = None,
    spendable_balance: Decimal | None = None,
    held: Decimal = ZERO,
    state: CustomerState | None = None,
) -> CartResult:
    """Calculate a cart for ``customer`` (None: an anonymous cart — earning preview, nothing redeemable).

    ``redeem`` (points the customer wants to spend) is spread over the lines in order, each up to its maximum, and
    the points earned on those lines shrink accordingly; more than the cart's maximum is
    ``redemption_above_maximum``. ``first_order`` defaults to "no purchase recorded yet". Bad lines are
    ``cart_invalid`` with a field error per line. ``held`` adds the points held for this cart at checkout (no
    longer available, but this cart's to spend) to the spendable balance. Two queries whatever the number of lines
    once the rulebook is cached — the customer's state and the catalogue —, and two more when ``at`` is given (the
    tier history and past tier terms); one less with ``state``, the customer's as ``cart_read`` read it."""
    validate_lines(lines)
    historical = at is not None
    at = at or timezone.now()
    if state is None:
        state = _customer_state(customer)
    programme = state.programme
    if programme is None:
        raise ProgrammeNotFound()
    rulebook = rulebook_for(programme)
    if not rulebook.tiers:
        raise ProgrammeNotFound()
    tier = _tier_at(customer, state, rulebook.tiers, at if historical else None)
    terms = _tier_terms(tier, at) if historical else _Terms(tier.earn_rate_percent, tier.max_redemption_percent)
    balance, first_order, balance_limit = _spendable(customer, state, first_order, spendable_balance, held)
    products = _products(lines)

    result = CartResult(
        customer_id=customer.pk if customer else None,
        programme=programme.code,
        balance_type=state.balance_type,
        tier=tier.code,
        at=at,
        first_order=first_order,
        spendable_balance=balance,
        unlock_on_payment=tuple(programme.unlock_on_payment or ()),
    )
    facts = [_facts(line, products[index], tier, channel, store) for index, line in enumerate(lines)]
    for index, line in enumerate(lines):
        result.lines.append(
            _line(index, line, products[index], facts[index], tier, terms, rulebook, at, balance, balance_limit)
        )

    _totals(result, balance, balance_limit)
    _apply_redeem(result, _points(redeem))
    for line_result in result.lines:
        _earn(line_result, products[line_result.index], facts[line_result.index], tier, terms, rulebook, programme, at)
    result.earn_points = sum((line.earn_points for line in result.lines), ZERO)
    return result


# --- the customer's side -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerState:
    """The programme and what the calculation needs of the customer, read in one query."""

    programme: Programme | None  # None: no programme for the customer's kind
    balance_type: str
    tier_id: int | None
    plain: Decimal
    members_only: Decimal
    first_order_only: Decimal
    has_purchases: bool


@dataclass(frozen=True)
class CartReading:
    """What ``cart_read`` found: None where there is no customer (anonymous, or none with the id) or no store."""

    customer: Customer | None
    store: Store | None
    state: CustomerState


_PROGRAMME = RowReader(Programme)
_CUSTOMER = RowReader(Customer, "id", "kind", "membership", "merged_into_id")  # what the calculation reads
_STORE = RowReader(Store, "id", "code")

# Hand-written because it is the hot path: the same query through the ORM's subquery expressions cost more to
# build than to run. Portable SQL (PostgreSQL and SQLite); the lots follow ``points.services.spending``. The customer
# and the store come along for the API, which has only their ids. Shaped for PostgreSQL's planner (scalar subqueries
# rather than joins over the many-indexed customer, account and lot tables), which costs more than running it unless
# the statement is prepared (``database_prepared_statements`` in the settings).
_STATE_SQL = """
SELECT {customer},
       (SELECT s.id FROM integrations_store s WHERE s.code = %s) AS store_id,
       {programme},
       (SELECT bt.code FROM points_balancetype bt WHERE bt.id = p.balance_type_id) AS balance_type_code,
       (SELECT ct.tier_id FROM programmes_customertier ct
         WHERE ct.customer_id = c.id AND ct.programme_id = p.id) AS customer_tier_id,
       COALESCE(SUM(CASE WHEN l.restriction = '' THEN l.remaining END), 0) AS plain,
       COALESCE(SUM(CASE WHEN l.restriction = 'members_only' THEN l.remaining END), 0) AS members_only,
       COALESCE(SUM(CASE WHEN l.restriction = 'first_order' THEN l.remaining END), 0) AS first_order_only,
       EXISTS(SELECT 1 FROM programmes_purchaserecord pr WHERE pr.customer_id = c.id AND pr.amount > 0)
         AS has_purchases
  FROM (SELECT 1 AS one) o
  LEFT JOIN customers_customer c ON c.id = %s
  LEFT JOIN programmes_programme p ON p.customer_kind = COALESCE(%s, c.kind)
  LEFT JOIN points_lot l ON l.account_id = (SELECT a.id FROM points_account a
                                             WHERE a.customer_id = c.id AND a.balance_type_id = p.balance_type_id)
                        AND l.state = 'active' AND l.remaining > 0 AND (l.expires_at IS NULL OR l.expires_at > %s)
 GROUP BY c.id, p.id
"""
_state_sql: str | None = None


def _read(customer_id: int | None, kind: str | None, store_code: str | None) -> CartReading:
    """The customer (by id), the store (by code), the programme of ``kind`` (of the customer's kind when None) and
    the customer's tier, spendable lots by restriction and whether a purchase was ever recorded: one query."""
    global _state_sql
    if _state_sql is None:
        _state_sql = _STATE_SQL.format(customer=_CUSTOMER.columns("c"), programme=_PROGRAMME.columns("p"))
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(_state_sql, [store_code, customer_id, kind, now])
        row = cursor.fetchone()
    width = len(_CUSTOMER.fields)
    customer_columns, store_id, rest = row[:width], row[width], row[width + 1 :]
    programme_columns, rest = rest[: len(_PROGRAMME.fields)], rest[len(_PROGRAMME.fields) :]
    balance_type, tier_id, plain, members_only, first_order_only, has_purchases = rest
    programme = _PROGRAMME.instance(programme_columns) if programme_columns[0] is not None else None
    return CartReading(
        customer=_CUSTOMER.instance(customer_columns) if customer_columns[0] is not None else None,
        store=_STORE.instance_of(id=store_id, code=store_code) if store_id is not None else None,
        state=CustomerState(
            programme,
            balance_type,
            tier_id,
            _decimal(plain),
            _decimal(members_only),
            _decimal(first_order_only),
            bool(has_purchases),
        ),
    )


def cart_read(*, customer_id: int | None, store_code: str | None) -> CartReading:
    """For the API, which has ids and codes: the customer of ``customer_id`` (only the fields the calculation reads;
    None without an id or without such a customer), the store of ``store_code`` (None without a code or without
    such a store) and the customer's state for ``cart_calculate(state=…)``, in one query. Raises nothing: what was
    not found is the caller's to answer."""
    return _read(customer_id, None if customer_id is not None else Programme.CustomerKind.RETAIL, store_code)


def _customer_state(customer: Customer | None) -> CustomerState:
    kind = customer.kind if customer else Programme.CustomerKind.RETAIL
    return _read(customer.pk if customer else None, kind, None).state


def _decimal(value) -> Decimal:
    return Decimal(str(value)).quantize(CENT)


def _tier_at(customer: Customer | None, state: CustomerState, tiers: tuple[Tier, ...], at: datetime | None) -> Tier:
    """The customer's tier now (``at`` None) or as the tier history had it at ``at``; the entry tier without one."""
    tier_id = state.tier_id
    if customer is not None and at is not None:
        tier_id = (
            TierChange.objects.filter(customer=customer, programme=state.programme, created_at__lte=at)
            .order_by("-created_at", "-pk")
            .values_list("to_tier_id", flat=True)
            .first()
        )
    return next((tier for tier in tiers if tier.pk == tier_id), tiers[0])


def _tier_terms(tier: Tier, at: datetime) -> _Terms:
    """The tier's earning rate and redemption cap in force at ``at``: the first past terms that ended after it."""
    past = TierTerms.objects.filter(tier=tier, valid_until__gt=at).order_by("valid_until").first()
    if past is None:
        return _Terms(tier.earn_rate_percent, tier.max_redemption_percent)
    return _Terms(past.earn_rate_percent, past.max_redemption_percent)


def _spendable(
    customer: Customer | None,
    state: CustomerState,
    first_order: bool | None,
    override: Decimal | None,
    held: Decimal = ZERO,
) -> tuple[Decimal, bool, Explanation]:
    """(spendable balance, first order, the explanation when the balance is what limits)."""
    if first_order is None:
        first_order = customer is not None and not state.has_purchases
    if customer is None:
        return ZERO, first_order, explain.anonymous()
    if customer.membership in (Customer.Membership.BLOCKED, Customer.Membership.ANONYMISED):
        return ZERO, first_order, explain.blocked()
    balance = state.plain
    if customer.is_member:
        balance += state.members_only
    if first_order:
        balance += state.first_order_only
    balance += held
    if override is not None:
        balance = override
    if balance == 0 and not customer.is_member:
        return balance, first_order, explain.not_a_member()
    return balance, first_order, explain.spendable_balance(balance)


# --- the lines -----------------------------------------------------------------------------------------------


def _catalogue(skus: list[str], category_codes: list[str]) -> tuple[dict[str, tuple], dict[str, str]]:
    """The products of these SKUs (with their category's code and path) and the paths of these category codes, in
    one hand-written query (the hot path, like ``_STATE_SQL``)."""
    if uses_arrays():  # one statement (to prepare) whatever the number of lines
        sql, params = _CATALOGUE_SQL.format(skus="= ANY(%s)", codes="= ANY(%s)"), [skus, category_codes]
    else:
        sql = _CATALOGUE_SQL.format(skus=_in(skus), codes=_in(category_codes) if category_codes else "IS NULL")
        params = [*skus, *category_codes]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    known = {row[0]: row for row in rows if row[0] is not None}
    paths = {row[5]: row[6] for row in rows if row[0] is None}
    return known, paths


_CATALOGUE_SQL = (
    "SELECT p.sku, p.name, p.new_arrival, p.excluded_from_earning, p.excluded_from_redemption, c.code, c.path"
    " FROM catalog_product p LEFT JOIN catalog_category c ON c.id = p.category_id WHERE p.sku {skus}"
    " UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, c.code, c.path FROM catalog_category c WHERE c.code {codes}"
)


def _in(values: list) -> str:
    return f"IN ({', '.join(['%s'] * len(values))})"


def _products(lines: list[CartLine]) -> list[_Product]:
    """Each line's product: the catalogue's when the SKU is known, else the attributes the line carries."""
    known, paths = _catalogue(
        sorted({line.sku for line in lines}), sorted({line.category for line in lines if line.category})
    )
    products = []
    for line in lines:
        row = known.get(line.sku)
        if row is not None:
            _sku, name, new_arrival, no_earning, no_redemption, category, path = row
            products.append(
                _Product(
                    name=name,
                    known=True,
                    category=category,
                    category_codes=frozenset(path.split(PATH_SEPARATOR)) if path else frozenset(),
                    new_arrival=bool(new_arrival),
                    excluded_from_earning=bool(no_earning),
                    excluded_from_redemption=bool(no_redemption),
                )
            )
            continue
        path = paths.get(line.category or "", line.category or "")
        products.append(
            _Product(
                name=line.name,
                known=False,
                category=line.category,
                category_codes=frozenset(path.split(PATH_SEPARATOR)) if path else frozenset(),
                new_arrival=bool(line.new_arrival),
                excluded_from_earning=bool(line.excluded_from_earning),
                excluded_from_redemption=bool(line.excluded_from_redemption),
            )
        )
    return products


def _facts(line: CartLine, product: _Product, tier: Tier, channel: Channel | None, store: Store | None) -> LineFacts:
    return LineFacts(
        tier_id=tier.pk,
        channel_kind=channel.kind if channel else None,
        store_id=store.pk if store else None,
        category_codes=product.category_codes,
        new_arrival=product.new_arrival,
        operation_type=line.operation_type,
        discount_percent=line.discount_percent,
    )


def _line(
    index: int,
    line: CartLine,
    product: _Product,
    facts: LineFacts,
    tier: Tier,
    terms: _Terms,
    rulebook: Rulebook,
    at: datetime,
    balance: Decimal,
    balance_limit: Explanation,
) -> LineResult:
    gross = (line.price * line.quantity).quantize(CENT, ROUND_HALF_UP)
    amount = (gross * (HUNDRED - line.discount_percent) / HUNDRED).quantize(CENT, ROUND_HALF_UP)
    caps = _redemption_caps(product, facts, tier, terms, rulebook, at, amount, balance)
    # Nothing spendable at all (anonymous, blocked, not a member) is the reason to give, whatever else caps.
    if balance_limit.code in _NOTHING_SPENDABLE:
        caps.insert(0, balance_limit)
    else:
        caps.append(balance_limit)
    limit = min(caps, key=lambda cap: cap.value)  # the first of equal caps: exclusions and rules before the tier
    return LineResult(
        index=index,
        sku=line.sku,
        name=product.name,
        product_known=product.known,
        category=product.category,
        operation_type=line.operation_type,
        quantity=line.quantity,
        price=line.price,
        discount_percent=line.discount_percent,
        discount=gross - amount,
        amount=amount,
        max_redeemable=_whole(limit.value),
        redemption_limit=limit,
        redemption_caps=caps,
        redeem=ZERO,
        earn_points=ZERO,
        earn_rate_percent=ZERO,
        earn_multiplier=WHOLE,
        earning=[],
    )


def _redemption_caps(
    product: _Product,
    facts: LineFacts,
    tier: Tier,
    terms: _Terms,
    rulebook: Rulebook,
    at: datetime,
    amount: Decimal,
    balance: Decimal,
) -> list[Explanation]:
    caps = []
    if product.excluded_from_redemption:
        caps.append(explain.product_excluded_from_redemption())
    rules = rulebook.redemption_rules(facts, at)
    for rule in sorted(rules, key=lambda rule: rule.kind != "forbidden"):
        if rule.kind == "forbidden":
            caps.append(explain.rule_forbidden(rule))
        elif rule.kind == "price_share":
            caps.append(explain.rule_price_share(rule, amount * rule.percent / HUNDRED))
        else:
            caps.append(explain.rule_balance_share(rule, balance, balance * rule.percent / HUNDRED))
    caps.append(explain.tier_cap(tier, terms.max_redemption_percent, amount * terms.max_redemption_percent / HUNDRED))
    return caps


def _totals(result: CartResult, balance: Decimal, balance_limit: Explanation) -> None:
    result.total_price = sum(((line.amount + line.discount) for line in result.lines), ZERO)
    result.total_discount = sum((line.discount for line in result.lines), ZERO)
    result.total_amount = sum((line.amount for line in result.lines), ZERO)
    by_lines = sum((line.max_redeemable for line in result.lines), ZERO)
    if by_lines > balance:
        result.max_redeemable, result.max_redeemable_limit = _whole(balance), balance_limit
    else:
        result.max_redeemable = by_lines


def _apply_redeem(result: CartResult, redeem: Decimal) -> None:
    """Spread the points to spend over the lines in order, each up to its maximum."""
    if redeem > result.max_redeemable:
        raise RedemptionAboveMaximum(extra={"maximum": str(result.max_redeemable), "requested": str(redeem)})
    left = redeem
    for line in result.lines:
        line.redeem = min(line.max_redeemable, left)
        left -= line.redeem
    result.redeem = redeem


def _earn(
    result: LineResult,
    product: _Product,
    facts: LineFacts,
    tier: Tier,
    terms: _Terms,
    rulebook: Rulebook,
    programme: Programme,
    at: datetime,
) -> None:
    if product.excluded_from_earning:
        result.earning = [explain.product_excluded_from_earning()]
        return
    rule = rulebook.earning_rule(facts, at)
    if rule is None:
        rate, reasons = terms.earn_rate_percent, [explain.tier_rate(tier, terms.earn_rate_percent)]
    elif rule.kind == "no_earning":
        result.earning = [explain.earning_rule_none(rule)]
        return
    else:
        rate, reasons = rule.rate_percent, [explain.earning_rule_rate(rule, rule.rate_percent)]
    multiplier = WHOLE
    promotion = rulebook.promotion(facts, at) if rate > 0 else None
    if promotion is not None:
        multiplier = promotion.multiplier
        reasons.append(explain.promotion(promotion))
    base = result.amount
    if result.redeem > 0 and not programme.earn_on_points_paid:
        base = result.amount - result.redeem
        reasons.append(explain.paid_in_points(base, result.redeem))
    exact = base * rate / HUNDRED * multiplier
    points = _round(exact, programme.rounding)
    if points != exact:
        reasons.append(explain.rounded(Rounding(programme.rounding).label))
    result.earn_points, result.earn_rate_percent, result.earn_multiplier, result.earning = (
        points,
        rate,
        multiplier,
        reasons,
    )


# --- numbers -------------------------------------------------------------------------------------------------


def _whole(value: Decimal) -> Decimal:
    return max(value, ZERO).quantize(WHOLE, ROUND_DOWN)


def _round(value: Decimal, rounding: str) -> Decimal:
    if rounding == Rounding.HALF_UP:
        return value.quantize(WHOLE, ROUND_HALF_UP)
    if rounding == Rounding.CENTS:
        return value.quantize(CENT, ROUND_DOWN)
    return value.quantize(WHOLE, ROUND_DOWN)


def _points(value: Decimal | int | str | None) -> Decimal:
    if value in (None, ""):
        return ZERO
    points = Decimal(str(value))
    if points < 0 or points != points.quantize(CENT):
        raise ValueError("redeem must be a non-negative amount of points with at most two decimals")
    return points
