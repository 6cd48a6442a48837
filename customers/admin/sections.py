"""The read-only parts of the customer page (SPEC F-STAFF-2): the points balances and the tables below the profile —
tier and its history, orders with their deliveries, complaints, consents and their history, external ids, the
change history, lots, the journal and the messages sent.

Each table shows its newest rows — a fixed number of queries whatever the history's size — with a link from every
row to its own page and from the table to the full, filtered (paginated) list. ``includes/section.html`` is the
frame of every table; ``includes/sections/<name>.html`` fills in its title, columns, row and the link to the list.

``SECTIONS`` names every table and how it is built. The page (F-STAFF-4: at most ten queries) builds only the
current state — the tier and the consents; each history is a placeholder that the page's script replaces with what
``CustomerAdmin.section_view`` answers at ``<id>/section/<name>/``, built by the same function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from django.apps import apps
from django.db.models import DecimalField, OuterRef, Prefetch, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from customers.admin.common import ACTION_LABELS, actor_label, changelist_url, field_changes
from customers.models import Consent, ConsentChannel, Customer, CustomerChange, SmsCode
from customers.selectors import customer_consent_history, customer_consents, customer_history
from orders.models import Order
from orders.selectors import customer_orders
from points.models import Account, Entry, Lot
from points.selectors import lots_expiring_within
from programmes.exceptions import ProgrammeNotFound
from programmes.selectors import TierStatus, customer_tier_status, tier_history

EXPIRING_WITHIN_DAYS = 30
ZERO = Decimal("0.00")
RECENT_ROWS = 20  # rows of each history on the customer page; the rest through the linked list
SECTION_TEMPLATES = "admin/customers/customer/includes/sections"


@dataclass(frozen=True)
class Recent:
    """The newest rows of a history, whether there are more, and the list holding all of them."""

    rows: list[Any]
    more: bool
    url: str | None


def recent(queryset: QuerySet, url: str | None) -> Recent:
    rows = list(queryset[: RECENT_ROWS + 1])
    return Recent(rows=rows[:RECENT_ROWS], more=len(rows) > RECENT_ROWS, url=url)


class ChannelConsent(NamedTuple):
    label: str
    consent: Consent | None  # None: never asked
    url: str  # the consent events of this customer on this channel


@dataclass(frozen=True)
class ChangeRow:
    change: CustomerChange
    action: str
    actor: str
    fields: list[tuple[str, Any, Any]]


@dataclass(frozen=True)
class CaseRow:
    """A complaint case with the links of its row (the complaints admin may not be registered)."""

    case: Any
    url: str | None
    order_url: str | None


@dataclass(frozen=True)
class Section:
    """One table of the customer page: ``name`` makes its HTML ids (``<name>-group``, ``<name>-heading``) and
    names its template, which fills in the blocks of ``includes/section.html``."""

    name: str
    rows: list[Any]
    recent: Recent | None = None  # the history the rows come from, for the link to the full list
    note: str = ""  # a line under the title (what the table leaves out)

    @property
    def template(self) -> str:
        return f"{SECTION_TEMPLATES}/{self.name}.html"


def admin_url(name: str, *args: Any) -> str | None:
    """The admin page ``name``, or None where that admin is not registered (the link is left out)."""
    try:
        return reverse(f"admin:{name}", args=args)
    except NoReverseMatch:
        return None


@dataclass(frozen=True)
class LazySection:
    """A history table the page leaves out: a placeholder with the section's id that the page's script replaces
    with what ``url`` answers (the section alone, see ``CustomerAdmin.section_view``)."""

    name: str
    url: str


@dataclass(frozen=True)
class Card:
    """What every builder reads: the customer, its accounts (prefetched) and the stores the user is confined to
    (None: all of them)."""

    customer: Customer
    accounts: list[Account]
    store_ids: set[int] | None = None


@dataclass(frozen=True)
class SectionKind:
    build: Callable[[Card], Section]
    lazy: bool  # a history: loaded after the page, through its own URL
    available: Callable[[], bool] = lambda: True


def _complaints_available() -> bool:
    return _complaints_reader() is not None


def _external_ids_section(card: Card) -> Section:
    return Section("external-ids", list(card.customer.external_ids.select_related("channel").order_by("channel__name")))


# name -> how to build it, in the page's order. The page builds the eager ones (the current state: tier, consents)
# and leaves a placeholder for each history, so it costs a fixed, small number of queries (F-STAFF-4); each
# history costs its own request a fixed number of queries whatever its length.
SECTIONS: dict[str, SectionKind] = {
    "tier": SectionKind(lambda card: tier_section(card.customer), lazy=False),
    "tier-history": SectionKind(lambda card: tier_history_section(card.customer), lazy=True),
    "orders": SectionKind(lambda card: orders_section(card.customer, card.store_ids), lazy=True),
    "complaints": SectionKind(
        lambda card: complaints_section(card.customer), lazy=True, available=_complaints_available
    ),
    "consents": SectionKind(lambda card: consents_section(card.customer), lazy=False),
    "consent-history": SectionKind(lambda card: consent_history_section(card.customer), lazy=True),
    "external-ids": SectionKind(_external_ids_section, lazy=True),
    "changes": SectionKind(lambda card: changes_section(card.customer), lazy=True),
    "lots": SectionKind(lambda card: lots_section(card.accounts), lazy=True),
    "journal": SectionKind(lambda card: journal_section(card.accounts), lazy=True),
    "messages": SectionKind(lambda card: messages_section(card.customer), lazy=True),
}


def section_kind(name: str) -> SectionKind | None:
    """The section called ``name`` when the page has it (None: unknown, or its app is not installed)."""
    kind = SECTIONS.get(name)
    return kind if kind is not None and kind.available() else None


def section_url(customer: Customer, name: str) -> str:
    return reverse("admin:customers_customer_section", args=[customer.pk, name])


def customer_sections(card: Card) -> list[Section | LazySection]:
    """What the customer page shows below the profile: the current tier and consents built here, a placeholder
    (with the URL answering it) for each history."""
    return [
        LazySection(name, section_url(card.customer, name)) if kind.lazy else kind.build(card)
        for name, kind in SECTIONS.items()
        if kind.available()
    ]


# --- tier -----------------------------------------------------------------------------------------------------------


def tier_section(customer: Customer) -> Section:
    """The current tier, the purchases it was qualified on and what the next tier needs: three queries."""
    try:
        status: TierStatus | None = customer_tier_status(customer=customer)
    except ProgrammeNotFound:
        status = None
    return Section("tier", [status] if status is not None else [])


def tier_history_section(customer: Customer) -> Section:
    changes = recent(
        tier_history(customer=customer).select_related("actor_user", "actor_channel").order_by("-created_at", "-pk"),
        changelist_url("programmes_tierchange", customer__id__exact=customer.pk),
    )
    return Section("tier-history", changes.rows, changes)


# --- orders and complaints ------------------------------------------------------------------------------------------


def orders_section(customer: Customer, store_ids: set[int] | None) -> Section:
    """The newest orders (parents only), each with its deliveries: two queries."""
    orders = customer_orders(customer=customer).prefetch_related(
        Prefetch("deliveries", queryset=Order.objects.order_by("created_at", "pk"))
    )
    note = ""
    if store_ids is not None:
        orders = orders.filter(store_id__in=store_ids)
        note = _("Orders of your stores only.")
    latest = recent(orders, changelist_url("orders_order", customer__id__exact=customer.pk))
    return Section("orders", latest.rows, latest, note=note)


def _complaints_reader() -> Callable[..., list[Any]] | None:
    """``complaints.selectors.customer_complaints`` when the complaints desk is installed."""
    if not apps.is_installed("complaints"):
        return None
    try:
        from complaints.selectors import customer_complaints  # an optional app: customers does not depend on it
    except ImportError:
        return None
    return customer_complaints


def complaints_section(customer: Customer) -> Section:
    """The newest complaint cases with the apology points granted on them: one query; no table without the app."""
    read = _complaints_reader()
    if read is None:
        return Section("complaints", [])
    cases = read(customer=customer, limit=RECENT_ROWS + 1)
    list_url = admin_url("complaints_complaintcase_changelist")
    rows = [
        CaseRow(
            case=case,
            url=admin_url("complaints_complaintcase_change", case.pk),
            order_url=admin_url("orders_order_change", case.order_id) if case.order_id else None,
        )
        for case in cases[:RECENT_ROWS]
    ]
    latest = Recent(
        rows=rows,
        more=len(cases) > RECENT_ROWS,
        url=f"{list_url}?{urlencode({'customer__id__exact': customer.pk})}" if list_url else None,
    )
    return Section("complaints", rows, latest)


# --- consents and the profile's history -----------------------------------------------------------------------------


def consents_section(customer: Customer) -> Section:
    """The current consent on every channel, each linking to that channel's events: one query."""
    consents = customer_consents(customer=customer)
    current = [
        ChannelConsent(
            ConsentChannel(channel).label,
            consent,
            changelist_url("customers_consentevent", customer__id__exact=customer.pk, channel__exact=channel),
        )
        for channel, consent in consents.items()
    ]
    return Section("consents", current)


def consent_history_section(customer: Customer) -> Section:
    events = recent(
        customer_consent_history(customer=customer),
        changelist_url("customers_consentevent", customer__id__exact=customer.pk),
    )
    return Section("consent-history", events.rows, events)


def changes_section(customer: Customer) -> Section:
    changes = recent(
        customer_history(customer=customer), changelist_url("customers_customerchange", customer__id__exact=customer.pk)
    )
    rows = [
        ChangeRow(
            change=change,
            action=str(ACTION_LABELS.get(change.action, change.action)),
            actor=actor_label(change),
            fields=field_changes(change),
        )
        for change in changes.rows
    ]
    return Section("changes", rows, changes)


# --- points ---------------------------------------------------------------------------------------------------------


def _account_ids(accounts: list[Account]) -> str:
    return ",".join(str(account.pk) for account in accounts)


def lots_section(accounts: list[Account]) -> Section:
    """The newest lots of the customer's accounts; the link opens the lot list filtered to these accounts."""
    lots = recent(
        Lot.objects.filter(account__in=accounts).select_related("account__balance_type").order_by("-pk"),
        changelist_url("points_lot", account__in=_account_ids(accounts)) if accounts else None,
    )
    return Section("lots", lots.rows, lots)


def journal_section(accounts: list[Account]) -> Section:
    """The newest journal lines of the customer's accounts; the link opens the paginated entry list filtered to
    these accounts."""
    entries = recent(
        Entry.objects.filter(account__in=accounts)
        .select_related("account__balance_type", "actor_channel", "actor_user")
        .order_by("-created_at", "-pk"),
        changelist_url("points_entry", account__in=_account_ids(accounts)) if accounts else None,
    )
    return Section("journal", entries.rows, entries)


# --- messages -------------------------------------------------------------------------------------------------------


def messages_section(customer: Customer) -> Section:
    """The registration codes sent to the customer's phone: when, through which channel, attempts, used. The codes
    themselves are stored hashed and never shown. One query (none without a phone)."""
    note = _("Campaign messages (SMS, email, push) will be listed here once campaigns send them.")
    if customer.phone is None:
        return Section("messages", [], note=note)
    phone = customer.phone.as_e164
    codes = recent(
        SmsCode.objects.filter(phone=phone).select_related("channel").order_by("-created_at", "-pk"),
        changelist_url("customers_smscode", q=phone),
    )
    return Section("messages", codes.rows, codes, note=note)


def card_accounts() -> QuerySet[Account]:
    """The customer's accounts as the page shows them, each with the points expiring within 30 days
    (``expiring_soon``, as ``points.selectors.points_balance`` counts them) computed in the same query: prefetched
    with the customer, the balances cost the page no query of their own."""
    now = timezone.now()
    expiring = (
        lots_expiring_within(EXPIRING_WITHIN_DAYS, now)
        .filter(account=OuterRef("pk"))
        .order_by()
        .values("account")
        .annotate(total=Sum("remaining"))
        .values("total")
    )
    return (
        Account.objects.select_related("balance_type")
        .annotate(expiring_soon=Coalesce(Subquery(expiring), Value(ZERO), output_field=DecimalField()))
        .order_by("balance_type")
    )


def points_balances_table(customer: Customer, accounts: list[Account]) -> str:
    """Per balance type: available / pending / held / debt / expiring within 30 days (F-STAFF-2). ``accounts``
    come from ``card_accounts``."""
    balances = [(account.balance_type, account) for account in accounts]
    if not balances:
        return format_html("<p>{}</p>", _("No points yet."))
    account_ids = ",".join(str(account.pk) for account in accounts)
    links = format_html(
        '<p><a href="{}">{}</a> · <a href="{}">{}</a> · <a href="{}">{}</a></p>',
        changelist_url("points_lot", account__in=account_ids),
        _("Lots"),
        changelist_url("points_entry", account__in=account_ids),
        _("Journal"),
        changelist_url("points_hold", account__in=account_ids),
        _("Holds"),
    )
    header = format_html_join(
        "",
        "<th>{}</th>",
        [
            (label,)
            for label in (
                _("balance type"),
                _("available"),
                _("pending"),
                _("held"),
                _("debt"),
                _("expiring in %(days)d days") % {"days": EXPIRING_WITHIN_DAYS},
            )
        ],
    )
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        [(balance_type, b.available, b.pending, b.held, b.debt, b.expiring_soon) for balance_type, b in balances],
    )
    return format_html('<table class="points-balances"><tr>{}</tr>{}</table>{}', header, rows, links)
