"""Reservations (F-ORD-7, F-TIER-3): items a customer books to see in a showroom.

The customer's tier sets how many items may be reserved at once (``Tier.reservation_item_limit``) and how many
days a reservation lasts beyond ``settings.RESERVATION_DAYS`` (``Tier.reservation_days_bonus``). An item counts
once per unit of its quantity; a reservation counts while it is active and not past its ``expires_at`` — one past
it is expired whether or not the hourly job (``reservations_expire_due``) has marked it yet.

Locks: creating takes the customer's row (``FOR NO KEY UPDATE``: it queues reservations of one customer without
blocking orders or points that merely reference the customer) and counts under it, so two concurrent
reservations cannot both pass the limit. Cancelling and fulfilling lock the reservation's row.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from core.actors import SYSTEM, Actor
from customers.exceptions import CustomerAnonymised, CustomerMerged
from customers.models import Customer
from integrations.models import Channel, Store
from orders.exceptions import (
    OrderInvalid,
    ReservationExists,
    ReservationLimitExceeded,
    ReservationNotActive,
    ReservationNotFound,
)
from orders.models import Reservation
from programmes.selectors import customer_tier
from staff.models import AuditRecord
from staff.services import audit_record

logger = logging.getLogger(__name__)

NUMBER_MAX_LENGTH = Reservation._meta.get_field("number").max_length
SKU_MAX_LENGTH = 64
NAME_MAX_LENGTH = 200


@dataclass(frozen=True)
class ReservationItem:
    sku: str
    quantity: int = 1
    name: str = ""


@dataclass(frozen=True)
class ReservationOutcome:
    """The reservation, and whether the call only repeated what an earlier one did (nothing was written)."""

    reservation: Reservation
    replayed: bool = False


def reservation_create(
    *,
    channel: Channel,
    number: str,
    customer: Customer,
    items: list[ReservationItem],
    store: Store | None = None,
    now: datetime | None = None,
) -> ReservationOutcome:
    """Reserve ``items`` for ``customer`` until ``now`` + ``RESERVATION_DAYS`` + the tier's extra days.

    Invariant: the item count of the customer's active, unexpired reservations never exceeds their tier's
    ``reservation_item_limit``; a reservation that would is refused with ``reservation_item_limit`` (extra
    ``limit``, ``reserved``, ``requested``) and nothing is written. Counted under the customer's row lock.

    Idempotent by (channel, number), the channel's own reservation number: the same number with the same
    customer, store and items replays the reservation as it is now; with anything else it is refused (see
    ``_number_taken``)."""
    now = now or timezone.now()
    wanted = _items_validate(number, items)
    try:
        with transaction.atomic():
            locked = Customer.objects.select_for_update(no_key=True).get(pk=customer.pk)
            # Looked up under the lock: the same number sent twice at once waits here for the first one.
            existing = _find(channel, number)
            if existing is not None:
                return _replay(existing, customer=customer, store=store, items=wanted)
            _customer_check(locked)
            tier = customer_tier(customer=locked).tier
            requested = sum(item["quantity"] for item in wanted)
            reserved = _reserved_items(customer.pk, now)
            if reserved + requested > tier.reservation_item_limit:
                raise ReservationLimitExceeded(
                    extra={"limit": tier.reservation_item_limit, "reserved": reserved, "requested": requested}
                )
            days = settings.RESERVATION_DAYS + tier.reservation_days_bonus
            reservation = Reservation.objects.create(
                channel=channel,
                number=number,
                customer=locked,
                store=store,
                items=wanted,
                item_count=requested,
                created_at=now,
                expires_at=now + timedelta(days=days),
            )
    except IntegrityError:
        # The same number taken concurrently for another customer: theirs is committed, ours rolled back.
        existing = _find(channel, number)
        if existing is None:
            raise
        return _replay(existing, customer=customer, store=store, items=wanted)
    return ReservationOutcome(reservation)


def reservation_find(*, channel: Channel, number: str) -> Reservation:
    """The channel's reservation with this number, or ``reservation_not_found``."""
    reservation = _find(channel, number)
    if reservation is None:
        raise ReservationNotFound(extra={"number": number})
    return reservation


def reservation_cancel(
    *, reservation: Reservation, actor: Actor = SYSTEM, reason: str = "", now: datetime | None = None
) -> ReservationOutcome:
    """The customer no longer wants the items: an active reservation becomes cancelled and stops counting
    towards the limit. Cancelling a cancelled one changes nothing (replayed); a fulfilled or expired one is
    ``reservation_not_active``. Under the reservation's row lock."""
    return _close(reservation, Reservation.Status.CANCELLED, actor=actor, reason=reason, now=now)


def reservation_fulfil(
    *, reservation: Reservation, actor: Actor = SYSTEM, now: datetime | None = None
) -> ReservationOutcome:
    """The customer came for the items: an active reservation becomes fulfilled. Fulfilling a fulfilled one
    changes nothing (replayed); a cancelled or expired one — also one past its expiry that the job has not
    marked yet — is ``reservation_not_active``. Under the reservation's row lock."""
    return _close(reservation, Reservation.Status.FULFILLED, actor=actor, reason="", now=now)


def reservations_expire_due(*, now: datetime | None = None, chunk_size: int = 1000) -> int:
    """Mark active reservations whose ``expires_at`` has passed as expired; how many were. Chunked by id, one
    conditional UPDATE per chunk: a row a concurrent cancel holds is waited for and then skipped if no longer
    active, so the job is safe to run twice or concurrently, and a re-run changes nothing."""
    now = now or timezone.now()
    expired = 0
    after_id = 0
    while True:
        ids = list(
            Reservation.objects.filter(status=Reservation.Status.ACTIVE, expires_at__lte=now, pk__gt=after_id)
            .order_by("pk")
            .values_list("pk", flat=True)[:chunk_size]
        )
        if not ids:
            break
        after_id = ids[-1]
        expired += Reservation.objects.filter(pk__in=ids, status=Reservation.Status.ACTIVE, expires_at__lte=now).update(
            status=Reservation.Status.EXPIRED, closed_at=now
        )
    if expired:
        logger.info("reservations expired: %d", expired)
    return expired


# --- helpers ---------------------------------------------------------------------------------


def _find(channel: Channel, number: str) -> Reservation | None:
    return Reservation.objects.select_related("channel", "store").filter(channel=channel, number=number).first()


def _items_validate(number: str, items: list[ReservationItem]) -> list[dict]:
    """The items as stored (``[{sku, quantity, name}]``), or ``order_invalid`` naming each bad field."""
    fields: dict[str, list[dict[str, str]]] = {}

    def bad(field: str, code: str, message: str) -> None:
        fields.setdefault(field, []).append({"code": code, "message": message})

    if not number or len(number) > NUMBER_MAX_LENGTH:
        bad("number", "invalid", _("A number of 1 to %(max)d characters.") % {"max": NUMBER_MAX_LENGTH})
    if not items:
        bad("items", "empty", _("Reserve at least one item."))
    seen: set[str] = set()
    for index, item in enumerate(items):
        if not item.sku or len(item.sku) > SKU_MAX_LENGTH:
            bad(f"items.{index}.sku", "invalid", _("A SKU of 1 to %(max)d characters.") % {"max": SKU_MAX_LENGTH})
        elif item.sku in seen:
            bad(f"items.{index}.sku", "duplicate", _("Named twice: give one item with its quantity."))
        seen.add(item.sku)
        if isinstance(item.quantity, bool) or not isinstance(item.quantity, int) or item.quantity < 1:
            bad(f"items.{index}.quantity", "invalid", _("A whole number, at least 1."))
        if len(item.name) > NAME_MAX_LENGTH:
            bad(f"items.{index}.name", "max_length", _("At most %(max)d characters.") % {"max": NAME_MAX_LENGTH})
    if fields:
        raise OrderInvalid(fields=fields)
    return [asdict(item) for item in items]


def _replay(existing: Reservation, *, customer: Customer, store: Store | None, items: list[dict]) -> ReservationOutcome:
    same = (
        existing.customer_id == customer.pk
        and existing.store_id == (store.pk if store else None)
        and _sorted(existing.items) == _sorted(items)
    )
    if not same:
        raise _number_taken(existing.number)
    return ReservationOutcome(existing, replayed=True)


def _number_taken(number: str) -> ReservationExists:
    return ReservationExists(extra={"number": number})


def _sorted(items: list[dict]) -> list[dict]:
    return sorted(items, key=lambda item: item["sku"])


def _customer_check(customer: Customer) -> None:
    if customer.merged_into_id is not None:
        raise CustomerMerged(extra={"customer_id": customer.pk, "merged_into": customer.merged_into_id})
    if customer.anonymised_at is not None or customer.membership == Customer.Membership.ANONYMISED:
        raise CustomerAnonymised(extra={"customer_id": customer.pk})


def _reserved_items(customer_id: int, now: datetime) -> int:
    """Items of the customer's active reservations not past their expiry (the partial index on active ones)."""
    total = Reservation.objects.filter(
        customer_id=customer_id, status=Reservation.Status.ACTIVE, expires_at__gt=now
    ).aggregate(total=Sum("item_count"))["total"]
    return total or 0


def _close(reservation: Reservation, status: str, *, actor: Actor, reason: str, now: datetime | None):
    now = now or timezone.now()
    with transaction.atomic():
        locked = (
            Reservation.objects.select_for_update(of=("self",))
            .select_related("channel", "store")
            .filter(pk=reservation.pk)
            .first()
        )
        if locked is None:
            raise ReservationNotFound(extra={"number": reservation.number})
        if locked.status == status:
            return ReservationOutcome(locked, replayed=True)
        current = _effective_status(locked, now)
        if current != Reservation.Status.ACTIVE:
            raise ReservationNotActive(extra={"number": locked.number, "status": current})
        before = locked.status
        locked.status, locked.closed_at = status, now
        locked.save(update_fields=["status", "closed_at"])
        # The reservation has no history of its own: a staff user's change is in the audit trail (F-STAFF-3).
        audit_record(
            actor=actor,
            action=AuditRecord.Action.ORDER_CHANGE,
            target=locked,
            reason=reason,
            before={"status": before},
            after={"status": status},
            customer_id=locked.customer_id,
            now=now,
        )
    logger.info(
        "reservation %s %s by %s%s",
        locked.pk,
        status,
        actor.user or actor.channel or "system",
        f": {reason}" if reason else "",
    )
    return ReservationOutcome(locked)


def _effective_status(reservation: Reservation, now: datetime) -> str:
    if reservation.status == Reservation.Status.ACTIVE and reservation.expires_at <= now:
        return Reservation.Status.EXPIRED
    return reservation.status
