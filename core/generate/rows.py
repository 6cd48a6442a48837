"""The rows of one batch of generated customers, as tuples of strings ready for COPY (``NULL`` for SQL NULL).

Each customer gets fixed-size id blocks (``entries_per_customer`` lots, entries and allocations,
``lines_per_customer`` orders and lines), so any batch can be built by any worker without asking the database:
unused ids are gaps, as a sequence leaves them. Randomness is seeded per batch: the same ``--seed`` gives the
same data however the batches are spread over workers.

The ledger is built the way the services write it (``points.services``), one allocation per entry:

  accrue    a new lot: active (+available) or pending (+pending); ``restriction`` members_only for a non-member
  unlock    a pending lot becomes active (available +a, pending -a, allocation 0) on delivery
  redeem    points spent from one lot (available -x); a lot left with nothing is ``spent``
  expire    what was left of a lot at its expiry (available -r): ``expired``
  cancel    a pending lot of a cancelled line (pending -a): ``cancelled``
  clawback  the points of a returned line, untouched (available -a): ``spent``

so every account's cached buckets equal its lots' and its journal's sums (``points_reconcile`` is clean).
Orders are till sales in the stores (delivered at once, points active at once) and web/app orders (pending
points unlocked on delivery, or still placed, partly delivered or cancelled); some delivered lines are
returned. An order's status, total and points follow from its lines as ``orders.services`` set them.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime

from core.generate.columns import TABLES
from core.generate.vocab import COLOURS, COMPANIES, EMAIL_DOMAINS, FEMALE_NAMES, MALE_NAMES, PRODUCTS, SURNAMES

NULL = "\\N"
DAY = 86400
LIFETIME_DAYS = 365

# Mobile codes of the generated phones: none of the ranges tests and other bench scripts use (+7900, +7903,
# +7916, +7925). A customer id maps to one number of 21 x 10**7 by a bijection, so phones never repeat.
PHONE_CODES = (905, 906, 909, 910, 915, 917, 919, 926, 929, 958, 962, 963, 964, 965, 967, 968, 977, 980, 985, 995, 999)
PHONE_SPACE = len(PHONE_CODES) * 10**7
PHONE_MULTIPLIER = 104_395_301  # coprime with PHONE_SPACE (2, 3, 5, 7)
PHONE_OFFSET = 12_345_679


def phone_of(customer_id: int) -> str:
    """The generated phone of a customer id, in E.164 as ``PhoneNumberField`` stores it."""
    value = (customer_id * PHONE_MULTIPLIER + PHONE_OFFSET) % PHONE_SPACE
    return f"+7{PHONE_CODES[value // 10**7]}{value % 10**7:07d}"


def card_of(customer_id: int) -> str:
    return f"2{customer_id:012d}"


@dataclass(frozen=True)
class Plan:
    """Everything a worker needs to build any batch (picklable)."""

    customers: int
    lines_per_customer: int
    entries_per_customer: int
    seed: int
    now: int  # epoch seconds
    first_ids: dict[str, int]
    store_ids: tuple[int, ...]
    channels: dict[str, int]  # showroom, site, app
    balance_types: dict[str, int]  # retail, b2b
    programme_id: int  # the retail programme
    tier_ids: tuple[int, ...]  # retail tiers by rank
    tier_rates: tuple[int, ...]  # their earning rates, in hundredths of a percent
    b2b_rate: int
    welcome_bonus: int
    welcome_days: int
    sqlite: bool = False


@dataclass
class Lot:
    kind: str
    amount: int
    created: int
    restriction: str
    source_type: str = ""
    source_id: str = ""
    pending: bool = False  # accrued pending
    unlocked: int | None = None  # when it became active (accrued active: created)
    expires: int | None = None
    remaining: int = 0
    state: str = "active"
    events: list = field(default_factory=list)  # (time, kind, amount, available, pending, remaining_delta)
    line: list | None = None  # the order line row (mutable) this lot belongs to


class Batch:
    """Builds the rows of customers ``start`` … ``start + count - 1`` of a plan."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.rows: dict[str, list[tuple[str, ...]]] = {table: [] for table in TABLES}
        self._days: dict[int, str] = {}
        suffix = "" if plan.sqlite else "+00"
        self._times = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}{suffix}" for s in range(DAY)]
        self._true, self._false = ("1", "0") if plan.sqlite else ("t", "f")
        catalogue = []
        rng = random.Random(plan.seed)
        for category, prefix, names, (low, high) in PRODUCTS:
            for number in range(40):
                price = int(rng.uniform(low, high) / 10) * 10 - 10 or low
                name = f"{rng.choice(names)}, {rng.choice(COLOURS)}"
                catalogue.append((f"{prefix}-{number + 1:04d}", name, category, price))
        self.catalogue = catalogue
        # A few big stores and many small ones.
        self.store_weights = list(itertools.accumulate(1 / (rank + 1) ** 0.7 for rank in range(len(plan.store_ids))))

    def ts(self, t: int) -> str:
        day = t // DAY
        text = self._days.get(day)
        if text is None:
            text = self._days[day] = datetime.fromtimestamp(day * DAY, UTC).strftime("%Y-%m-%d ")
        return text + self._times[t % DAY]

    def build(self, start: int, count: int) -> dict[str, list[tuple[str, ...]]]:
        self.rng = random.Random(f"{self.plan.seed}:{start}")
        for index in range(start, start + count):
            self.customer(index)
        return self.rows

    # --- one customer ------------------------------------------------------------------------------------------

    def customer(self, index: int) -> None:
        plan, r = self.plan, self.rng.random
        ids = plan.first_ids
        now = plan.now
        cid = ids["customers_customer"] + index
        created = now - DAY - int(r() * 729 * DAY)
        roll = r()
        membership = (
            "member" if roll < 0.86 else "non_member" if roll < 0.955 else "blocked" if roll < 0.99 else "anonymised"
        )
        joined = min(created + int(r() * 3 * DAY), now - 3600) if membership != "non_member" else None
        kind = "b2b" if r() < 0.03 else "retail"
        female = r() < 0.55
        first, first_latin = self.rng.choice(FEMALE_NAMES if female else MALE_NAMES)
        male_surname, female_surname, surname_latin = self.rng.choice(SURNAMES)
        name = f"{first} {female_surname if female else male_surname}"
        email = f"{first_latin}.{surname_latin}{cid}@{self.rng.choice(EMAIL_DOMAINS)}" if r() < 0.65 else ""
        email_validated = self.ts(min(created + DAY, now - 60)) if email and r() < 0.4 else NULL
        birth = f"{1950 + int(r() * 56)}-{1 + int(r() * 12):02d}-{1 + int(r() * 28):02d}" if r() < 0.7 else NULL
        channel_roll = r()
        if membership == "non_member":  # made by a receipt in a store
            join_channel, store = NULL, self.store()
        elif channel_roll < 0.6:
            join_channel, store = str(plan.channels["showroom"]), self.store()
        else:
            join_channel, store = str(plan.channels["site" if channel_roll < 0.9 else "app"]), None
        home_store = store or self.store()
        company, role = ("", "")
        if kind == "b2b":
            company, role = self.rng.choice(COMPANIES), self.rng.choice(("designer", "horeca", "developer"))
        anonymised, updated = NULL, max(created, joined or 0)
        phone, card = phone_of(cid), (card_of(cid) if r() < 0.6 else NULL)
        gender = "female" if female else "male"
        if membership == "anonymised":
            anonymised_at = now - int(r() * (now - joined)) if joined < now else now
            anonymised, updated = self.ts(anonymised_at), anonymised_at
            phone, email, email_validated, name, birth, card, gender = (NULL, "", NULL, "", NULL, NULL, "")
        self.rows["customers_customer"].append(
            (
                str(cid),
                phone,
                email,
                email_validated,
                name,
                birth,
                gender,
                card,
                kind,
                company,
                role,
                membership,
                self.ts(joined) if joined is not None else NULL,
                join_channel,
                str(store) if store else NULL,
                "en" if r() < 0.04 else "ru",
                anonymised,
                self.ts(created),
                self.ts(updated),
            )
        )
        rank = 0
        if kind == "retail" and membership == "member":
            tier_roll = r()
            rank = 3 if tier_roll < 0.03 else 2 if tier_roll < 0.12 else 1 if tier_roll < 0.30 else 0
            if rank:
                self.tier(index, cid, rank, joined + int(r() * (now - joined)))
        rate = plan.b2b_rate if kind == "b2b" else plan.tier_rates[rank]
        lots = self.orders(index, cid, created, home_store, rate, membership == "non_member")
        self.ledger(index, cid, kind, created, joined, membership, lots)

    def store(self) -> int:
        return self.rng.choices(self.plan.store_ids, cum_weights=self.store_weights)[0]

    def tier(self, index: int, cid: int, rank: int, since: int) -> None:
        plan = self.plan
        stamp = self.ts(since)
        self.rows["programmes_customertier"].append(
            (
                str(plan.first_ids["programmes_customertier"] + index),
                str(cid),
                str(plan.programme_id),
                str(plan.tier_ids[rank]),
                stamp,
                self._false,
                stamp,
            )
        )
        self.rows["programmes_tierchange"].append(
            (
                str(plan.first_ids["programmes_tierchange"] + index),
                str(cid),
                str(plan.programme_id),
                str(plan.tier_ids[0]),
                str(plan.tier_ids[rank]),
                "upgrade",
                "",
                stamp,
            )
        )

    # --- orders ------------------------------------------------------------------------------------------------

    def orders(self, index: int, cid: int, created: int, home_store: int, rate: int, restricted: bool) -> list[Lot]:
        """The customer's orders and lines; returns the lots their earning lines would accrue, oldest first."""
        plan, r, rng = self.plan, self.rng.random, self.rng
        now = plan.now
        per_customer = plan.lines_per_customer
        first_order = plan.first_ids["orders_order"] + index * per_customer
        first_line = plan.first_ids["orders_orderline"] + index * per_customer
        restriction = "members_only" if restricted else ""
        lots: list[Lot] = []
        sizes = []
        left = per_customer
        while left:
            size = min(left, rng.choice((1, 1, 2, 2, 3)))
            sizes.append(size)
            left -= size
        # More orders lately than long ago.
        times = sorted(created + int((1 - r() ** 2) * (now - created)) for _ in sizes)
        line_id = first_line
        for number, (size, at) in enumerate(zip(sizes, times, strict=True)):
            order_id = first_order + number
            channel_roll = r()
            recent = at > now - 14 * DAY
            if channel_roll < 0.55:
                channel, store = "showroom", (home_store if r() < 0.7 else self.store())
                scenario = "till"
            else:
                channel, store = ("site" if channel_roll < 0.9 else "app"), None
                scenario_roll = r()
                if scenario_roll < 0.05:
                    scenario = "cancelled"
                elif recent:
                    scenario = "placed" if scenario_roll < 0.5 else "partial" if scenario_roll < 0.8 else "delivered"
                else:
                    scenario = "delivered"
            delivered_at = at if scenario == "till" else min(at + DAY + int(r() * 9 * DAY), now - 60)
            total = earn_total = 0
            statuses = set()
            for line_number in range(1, size + 1):
                sku, name, category, price = rng.choice(self.catalogue)
                quantity = 2 if category in ("chairs", "decor") and r() < 0.3 else 1
                discount_roll = r()
                discount = 0 if discount_roll < 0.7 else 10 if discount_roll < 0.9 else 20
                cents = price * quantity * (100 - discount)  # price in roubles x 100 x (100 - discount) / 100
                earn = cents * rate // 1_000_000  # whole points; rate in hundredths of a percent
                status, line_delivered, closed = "placed", None, None
                if scenario in ("till", "delivered") or (scenario == "partial" and line_number == 1):
                    status, line_delivered = "delivered", delivered_at
                    if r() < 0.04 and delivered_at < now - 2 * DAY:
                        status, closed = "returned", min(delivered_at + DAY + int(r() * 20 * DAY), now - 60)
                elif scenario == "cancelled":
                    status, closed = "cancelled", min(at + int(r() * 2 * DAY) + 60, now - 30)
                statuses.add(status)
                line = [
                    str(line_id),
                    str(order_id),
                    str(line_number),
                    "0",
                    sku,
                    name,
                    category,
                    "{}",
                    "purchase",
                    f"{price}.00",
                    f"{discount}.00",
                    f"{quantity}.000",
                    f"{cents // 100}.{cents % 100:02d}",
                    "0.00",
                    f"{earn}.00",
                    status,
                    NULL,
                    self._false,
                    self.ts(line_delivered) if line_delivered is not None else NULL,
                    self.ts(closed) if closed is not None else NULL,
                    "",
                ]
                self.rows["orders_orderline"].append(line)
                if earn > 0:
                    lot = Lot("purchase", earn, at, restriction, "order_line", str(line_id), line=line)
                    if status == "placed" or status == "cancelled":
                        lot.pending = True
                        if status == "cancelled":
                            lot.events.append((closed, "cancel"))
                    elif scenario == "till":
                        lot.unlocked = at
                    else:
                        lot.pending, lot.unlocked = True, line_delivered
                    if status == "returned":
                        lot.events.append((closed, "clawback"))
                    lots.append(lot)
                total += cents
                earn_total += earn
                line_id += 1
            self.rows["orders_order"].append(
                (
                    str(order_id),
                    str(plan.channels[channel]),
                    f"D{order_id:010d}",
                    "order",
                    str(store) if store else NULL,
                    f"seller-{store}-{1 + int(r() * 6)}" if store else "",
                    str(cid),
                    "",
                    _order_status(statuses),
                    "delivery",
                    self._false,
                    self.ts(at),
                    self.ts(at),
                    self.ts(max(at, delivered_at if scenario != "placed" else at)),
                    f"{total // 100}.{total % 100:02d}",
                    "0.00",
                    f"{earn_total}.00",
                    "",
                )
            )
        return lots

    # --- the ledger --------------------------------------------------------------------------------------------

    def ledger(
        self, index: int, cid: int, kind: str, created: int, joined: int | None, membership: str, lots: list[Lot]
    ) -> None:
        plan, r, rng = self.plan, self.rng.random, self.rng
        now, budget = plan.now, plan.entries_per_customer
        if joined is not None and plan.welcome_bonus and kind == "retail":
            lots.insert(0, Lot("welcome", plan.welcome_bonus, joined, "", "customer", str(cid), unlocked=joined))
        for lot in lots:
            if lot.unlocked is not None:
                lot.expires = lot.unlocked + (plan.welcome_days if lot.kind == "welcome" else LIFETIME_DAYS) * DAY
        # The journal lines each lot needs (accrue, unlock, cancel or clawback, and for a lot past its expiry
        # the line that closed it): lines beyond the budget earn nothing instead (no lot), welcome bonus last.
        cost = [1 + (lot.pending and lot.unlocked is not None) + len(lot.events) + _due(lot, now) for lot in lots]
        spent = sum(cost)
        if spent > budget:
            order = list(range(len(lots)))
            rng.shuffle(order)
            order.sort(key=lambda i: lots[i].kind == "welcome")
            dropped = set()
            for i in order:
                if spent <= budget:
                    break
                dropped.add(i)
                spent -= cost[i]
                line = lots[i].line
                if line is not None:
                    line[14] = "0.00"
            if any(lots[i].line is not None for i in dropped):
                _recount_order_points(self.rows["orders_order"], self.rows["orders_orderline"])
            lots = [lot for i, lot in enumerate(lots) if i not in dropped]
        left = budget - spent
        # A lot past its expiry was spent before it, or expired (the expiry job's line), or partly both.
        for lot in lots:
            if not _due(lot, now):
                continue
            roll = r()
            before_expiry = lot.unlocked + int(r() * (lot.expires - lot.unlocked))
            if roll < 0.15 and left:
                part = max(1, int(lot.amount * (0.2 + 0.6 * r())))
                if part < lot.amount:
                    lot.events.append((before_expiry, "redeem", part))
                    left -= 1
                lot.events.append((lot.expires, "expire"))
            elif roll < 0.55:
                lot.events.append((before_expiry, "redeem", lot.amount))
            else:
                lot.events.append((lot.expires, "expire"))
        # Some of the active ones are partly or wholly spent, while the budget lasts.
        for lot in lots:
            if not left:
                break
            if lot.unlocked is None or lot.events:
                continue
            roll = r()
            if roll < 0.45:
                part = lot.amount if roll < 0.2 else max(1, int(lot.amount * (0.2 + 0.6 * r())))
                lot.events.append((lot.unlocked + int(r() * (now - lot.unlocked)), "redeem", part))
                left -= 1
        # Whatever budget is left: promotion, birthday, review and apology points, active.
        start = max(created, now - 300 * DAY)
        while left:
            at = start + int(r() * (now - start))
            extra_kind = rng.choice(("promo", "birthday", "review", "apology"))
            amount = rng.choice((100, 200, 300, 500, 1000))
            lots.append(Lot(extra_kind, amount, at, "", "", "", unlocked=at, expires=at + LIFETIME_DAYS * DAY))
            left -= 1
        self.write_ledger(index, cid, kind, created, lots)

    def write_ledger(self, index: int, cid: int, kind: str, created: int, lots: list[Lot]) -> None:
        plan = self.plan
        per_customer = plan.entries_per_customer
        account_id = plan.first_ids["points_account"] + index
        first_lot = plan.first_ids["points_lot"] + index * per_customer
        journal = []  # (time, order, lot id, kind, amount, available, pending, remaining delta)
        available = pending = 0
        lot_rows = self.rows["points_lot"]
        for number, lot in enumerate(lots):
            lot_id = first_lot + number
            remaining, state = lot.amount, "active"
            if lot.pending:
                journal.append((lot.created, 0, lot_id, "accrue", lot.amount, 0, lot.amount, lot.amount))
                if lot.unlocked is not None:
                    journal.append((lot.unlocked, 1, lot_id, "unlock", lot.amount, lot.amount, -lot.amount, 0))
                else:
                    state = "pending"
            else:
                journal.append((lot.created, 0, lot_id, "accrue", lot.amount, lot.amount, 0, lot.amount))
            for step, event in enumerate(lot.events, start=2):
                at, what = event[0], event[1]
                if what == "cancel":
                    journal.append((at, step, lot_id, "cancel", remaining, 0, -remaining, -remaining))
                    remaining, state = 0, "cancelled"
                elif what == "redeem":
                    part = event[2]
                    journal.append((at, step, lot_id, "redeem", part, -part, 0, -part))
                    remaining -= part
                    state = "spent" if remaining == 0 else state
                else:  # expire, clawback: all that is left
                    journal.append((at, step, lot_id, what, remaining, -remaining, 0, -remaining))
                    state = "expired" if what == "expire" else "spent"
                    remaining = 0
            if state == "active":
                available += remaining
            elif state == "pending":
                pending += remaining
            if lot.line is not None:
                lot.line[16] = str(lot_id)
                lot.line[17] = self._true if lot.unlocked is not None else self._false
            lot_rows.append(
                (
                    str(lot_id),
                    str(account_id),
                    lot.kind,
                    f"{lot.amount}.00",
                    f"{remaining}.00",
                    "0.00",
                    state,
                    NULL,
                    self.ts(lot.expires) if lot.expires is not None else NULL,
                    str(LIFETIME_DAYS) if lot.kind != "welcome" else str(plan.welcome_days),
                    lot.restriction,
                    lot.source_type,
                    lot.source_id,
                    self.ts(lot.created),
                )
            )
        journal.sort()
        entry_id = plan.first_ids["points_entry"] + index * per_customer
        allocation_id = plan.first_ids["points_allocation"] + index * per_customer
        entries, allocations = self.rows["points_entry"], self.rows["points_allocation"]
        for at, _order, lot_id, what, amount, available_delta, pending_delta, remaining_delta in journal:
            key = f"welcome:{cid}" if what == "accrue" and lot_id == first_lot and lots[0].kind == "welcome" else ""
            entries.append(
                (
                    str(entry_id),
                    str(account_id),
                    what,
                    f"{amount}.00",
                    f"{available_delta}.00",
                    f"{pending_delta}.00",
                    "0.00",
                    "0.00",
                    key or f"demo:{entry_id}",
                    "0",
                    "",
                    "",
                    self.ts(at),
                )
            )
            allocations.append((str(allocation_id), str(entry_id), str(lot_id), f"{remaining_delta}.00", "0.00"))
            entry_id += 1
            allocation_id += 1
        stamp = self.ts(max(created, journal[-1][0]) if journal else created)
        self.rows["points_account"].append(
            (
                str(account_id),
                str(cid),
                str(plan.balance_types[kind]),
                f"{available}.00",
                f"{pending}.00",
                "0.00",
                "0.00",
                self.ts(created),
                stamp,
            )
        )


def _due(lot: Lot, now: int) -> bool:
    """An active lot whose expiry has passed, with nothing else planned for it."""
    return lot.unlocked is not None and not lot.events and lot.expires <= now


def _order_status(statuses: set[str]) -> str:
    """As ``orders.services.common.order_status_refresh`` derives it from the lines' statuses."""
    live = statuses - {"cancelled"}
    if not live:
        return "cancelled"
    if live == {"returned"}:
        return "returned"
    if "returned" in live:
        return "partially_returned"
    if live == {"delivered"}:
        return "delivered"
    if "delivered" in live:
        return "partially_delivered"
    return "placed"


def _recount_order_points(orders: list, lines: list) -> None:
    """After lines lost their points: each of the customer's orders' ``points_to_earn`` is its lines' sum again.
    The customer's orders are the last ones appended, and their lines too."""
    sums: dict[str, int] = {}
    customer = orders[-1][6]
    position = len(orders) - 1
    while position >= 0 and orders[position][6] == customer:
        sums[orders[position][0]] = 0
        position -= 1
    for line in reversed(lines):
        if line[1] not in sums:
            break
        sums[line[1]] += int(line[14].split(".")[0])
    for at in range(position + 1, len(orders)):
        row = orders[at]
        orders[at] = (*row[:16], f"{sums[row[0]]}.00", *row[17:])
