"""Merging a duplicate customer into the survivor (F-ID-7): one person, two records (e.g. two phones)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from core.actors import Actor
from customers.exceptions import CustomerAnonymised, CustomerBlocked, CustomerMerged, MergeIntoSelf
from customers.models import Consent, ConsentEvent, Customer, ExternalId
from customers.services.history import record_change
from points.models import Lot
from points.services import points_lift_restriction, points_move_to_customer
from points.services.journal import require_reason

# Sent inside the merge's transaction as (sender=Customer, duplicate, survivor, actor): apps owning rows keyed
# on customers (orders, reviews) move them to the survivor in their receivers.
customer_merged = Signal()
# Sent inside the merge, after the two customers are locked and before the points move: receivers that lock rows
# the ledger's writers lock first (orders lock their order, then the accounts) move them here, in that same order.
customer_merging = Signal()

FILLED_FROM_DUPLICATE = ("name", "birth_date", "gender", "company")


def customer_merge(
    *, duplicate: Customer, survivor: Customer, actor: Actor, reason: str, now: datetime | None = None
) -> Customer:
    """Merge ``duplicate`` into ``survivor``. Points move through the ledger (``move_out``/``move_in`` entries,
    lots keep their expiry and source); consents and their history, external ids and the card follow where the
    survivor has none; profile gaps are filled; a member duplicate makes the survivor a member. The duplicate
    stays as a redirect (``merged_into``): identifying it by its phone, card or external id finds the survivor.
    Staff or a channel, with a reason. Merging the same pair again returns the survivor and changes nothing."""
    require_reason(actor, reason)
    if duplicate.pk == survivor.pk:
        raise MergeIntoSelf()
    now = now or timezone.now()
    with transaction.atomic():
        locked = {
            c.pk: c
            # No-key: rows referencing the customers (a delivery's journal lines) are not blocked by the merge.
            for c in Customer.objects.select_for_update(no_key=True)
            .filter(pk__in=[duplicate.pk, survivor.pk])
            .order_by("pk")
        }
        duplicate, survivor = locked[duplicate.pk], locked[survivor.pk]
        if duplicate.merged_into_id == survivor.pk:
            return survivor
        for customer in (duplicate, survivor):
            if customer.merged_into_id is not None:
                raise CustomerMerged(extra={"customer_id": customer.pk, "merged_into": customer.merged_into_id})
            if customer.membership == Customer.Membership.ANONYMISED:
                raise CustomerAnonymised(extra={"customer_id": customer.pk})
        if duplicate.membership == Customer.Membership.BLOCKED and survivor.membership != duplicate.membership:
            # Merging would lift the block; staff decide first (unblock the duplicate or block the survivor).
            raise CustomerBlocked(extra={"customer_id": duplicate.pk})
        key = f"merge:{duplicate.pk}:{survivor.pk}"
        customer_merging.send(sender=Customer, duplicate=duplicate, survivor=survivor, actor=actor)
        points_move_to_customer(
            source=duplicate, target=survivor, operation_key=key, actor=actor, reason=reason, now=now
        )
        survivor_changes = _fill_profile(duplicate, survivor)
        survivor_changes.update(_take_identifiers(duplicate, survivor))
        if duplicate.membership == Customer.Membership.MEMBER and survivor.membership == Customer.Membership.NON_MEMBER:
            survivor_changes["membership"] = [survivor.membership, Customer.Membership.MEMBER]
            survivor.membership, survivor.joined_at = Customer.Membership.MEMBER, duplicate.joined_at
        survivor.save()
        if survivor.is_member:
            points_lift_restriction(
                customer=survivor,
                restriction=Lot.Restriction.MEMBERS_ONLY,
                operation_key=f"{key}:unrestrict",
                actor=actor,
                reason=reason,
                now=now,
            )
        _move_consents(duplicate, survivor)
        duplicate.merged_into, duplicate.merged_at = survivor, now
        duplicate.save(update_fields=["merged_into", "merged_at", "card_number", "updated_at"])
        # Redirects stay one hop: what was merged into the duplicate now points at the survivor.
        Customer.objects.filter(merged_into=duplicate).update(merged_into=survivor)
        record_change(
            duplicate,
            action="merged",
            actor=actor,
            now=now,
            reason=reason,
            changes={"merged_into": [None, survivor.pk]},
        )
        survivor_changes["merged_duplicate"] = [None, duplicate.pk]
        record_change(survivor, action="merge", actor=actor, now=now, reason=reason, changes=survivor_changes)
        customer_merged.send(sender=Customer, duplicate=duplicate, survivor=survivor, actor=actor)
    return survivor


def _fill_profile(duplicate: Customer, survivor: Customer) -> dict:
    changes = {}
    for name in FILLED_FROM_DUPLICATE:
        if getattr(survivor, name) in ("", None) and getattr(duplicate, name) not in ("", None):
            changes[name] = [None, str(getattr(duplicate, name))]
            setattr(survivor, name, getattr(duplicate, name))
    if not survivor.email and duplicate.email:
        changes["email"] = [None, duplicate.email]
        survivor.email, survivor.email_validated_at = duplicate.email, duplicate.email_validated_at
    return changes


def _take_identifiers(duplicate: Customer, survivor: Customer) -> dict:
    """The card and external ids move where the survivor has none; the rest stay on the duplicate, where
    identifying by them redirects to the survivor."""
    changes = {}
    if duplicate.card_number and not survivor.card_number:
        changes["card_number"] = [None, duplicate.card_number]
        survivor.card_number, duplicate.card_number = duplicate.card_number, None
        duplicate.save(update_fields=["card_number"])  # free the unique card before the survivor takes it
    taken = set(ExternalId.objects.filter(customer=survivor).values_list("channel_id", flat=True))
    moving = list(ExternalId.objects.filter(customer=duplicate).exclude(channel_id__in=taken).select_related("channel"))
    for external in moving:
        changes[f"external_id:{external.channel.code}"] = [None, external.external_id]
    ExternalId.objects.filter(pk__in=[external.pk for external in moving]).update(customer=survivor)
    return changes


def _move_consents(duplicate: Customer, survivor: Customer) -> None:
    """History follows; per channel the most recent decision of the two wins."""
    ConsentEvent.objects.filter(customer=duplicate).update(customer=survivor)
    mine = {c.channel: c for c in Consent.objects.filter(customer=survivor)}
    for theirs in Consent.objects.filter(customer=duplicate):
        current = mine.get(theirs.channel)
        if current is None or theirs.changed_at > current.changed_at:
            Consent.objects.update_or_create(
                customer=survivor,
                channel=theirs.channel,
                defaults={
                    "granted": theirs.granted,
                    "source": theirs.source,
                    "text_version": theirs.text_version,
                    "changed_at": theirs.changed_at,
                },
            )
    Consent.objects.filter(customer=duplicate).delete()
