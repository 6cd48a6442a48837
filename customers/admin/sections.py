"""The read-only parts of the customer page: the points balances and the tables below the profile (consents,
their history, external ids, the change history, lots and the journal).

Each table shows its newest rows — one query whatever the history's size — with a link to the full, filtered
list. ``includes/section.html`` is the frame of every table; ``includes/sections/<name>.html`` fills in its
title, columns, row and the link to the full list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from django.db.models import QuerySet
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from customers.admin.common import ACTION_LABELS, actor_label, changelist_url, field_changes
from customers.models import Consent, ConsentChannel, Customer, CustomerChange
from customers.selectors import customer_consent_history, customer_consents, customer_history
from points.models import Account, Entry, Lot
from points.selectors import points_balance

EXPIRING_WITHIN_DAYS = 30
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


@dataclass(frozen=True)
class ChangeRow:
    change: CustomerChange
    action: str
    actor: str
    fields: list[tuple[str, Any, Any]]


@dataclass(frozen=True)
class Section:
    """One table of the customer page: ``name`` makes its HTML ids (``<name>-group``, ``<name>-heading``) and
    names its template, which fills in the blocks of ``includes/section.html``."""

    name: str
    rows: list[Any]
    recent: Recent | None = None  # the history the rows come from, for the link to the full list

    @property
    def template(self) -> str:
        return f"{SECTION_TEMPLATES}/{self.name}.html"


def customer_sections(customer: Customer, accounts: list[Account]) -> list[Section]:
    """What the customer page shows below the profile: one query per section, whatever the history's size."""
    account_ids = ",".join(str(account.pk) for account in accounts)
    consents = customer_consents(customer=customer)
    changes = recent(
        customer_history(customer=customer), changelist_url("customers_customerchange", customer__id__exact=customer.pk)
    )
    consent_events = recent(
        customer_consent_history(customer=customer),
        changelist_url("customers_consentevent", customer__id__exact=customer.pk),
    )
    external_ids = list(customer.external_ids.select_related("channel").order_by("channel__name"))
    lots = recent(
        Lot.objects.filter(account__in=accounts).select_related("account__balance_type").order_by("-pk"),
        changelist_url("points_lot", account__in=account_ids) if accounts else None,
    )
    entries = recent(
        Entry.objects.filter(account__in=accounts)
        .select_related("account__balance_type", "actor_channel", "actor_user")
        .order_by("-created_at", "-pk"),
        changelist_url("points_entry", account__in=account_ids) if accounts else None,
    )
    change_rows = [
        ChangeRow(
            change=change,
            action=str(ACTION_LABELS.get(change.action, change.action)),
            actor=actor_label(change),
            fields=field_changes(change),
        )
        for change in changes.rows
    ]
    return [
        Section(
            "consents",
            [ChannelConsent(ConsentChannel(channel).label, consent) for channel, consent in consents.items()],
        ),
        Section("consent-history", consent_events.rows, consent_events),
        Section("external-ids", external_ids),
        Section("changes", change_rows, changes),
        Section("lots", lots.rows, lots),
        Section("journal", entries.rows, entries),
    ]


def points_balances_table(customer: Customer, accounts: list[Account]) -> str:
    """Per balance type: available / pending / held / debt / expiring within 30 days (F-STAFF-2)."""
    balances = [
        (account.balance_type, points_balance(customer=customer, balance_type=account.balance_type.code))
        for account in accounts
    ]
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
