"""Points that change hands or rules because the customer did: joining lifts the members-only restriction
(F-ID-4), a merge moves a duplicate's points to the survivor (F-ID-7). Both through journal entries."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from customers.models import Customer
from points.exceptions import HoldsOpen
from points.locks import accounts_lock
from points.models import ZERO, Account, Entry, Lot
from points.services.journal import SYSTEM, Actor, Journal, PointsOperation, fingerprint, replay
from points.services.reversal import _outstanding

LIVE_STATES = (Lot.State.PENDING, Lot.State.ACTIVE)


def points_lift_restriction(
    *,
    customer: Customer,
    restriction: str,
    operation_key: str,
    actor: Actor = SYSTEM,
    reason: str = "",
    now: datetime | None = None,
) -> list[PointsOperation]:
    """Make the customer's pending and active lots with ``restriction`` unrestricted, one ``unrestrict`` entry
    per account naming every lot it changed. Nothing to lift writes nothing. Idempotent by key."""
    now = now or timezone.now()
    key_print = fingerprint(op="unrestrict", customer=customer.pk, restriction=restriction)
    with transaction.atomic():
        account_ids = sorted(Account.objects.filter(customer=customer).values_list("pk", flat=True))
        accounts = accounts_lock(account_ids=account_ids)
        if Entry.objects.filter(operation_key=operation_key, operation_seq=0).exists():
            return [replay(key=operation_key, fingerprint_=key_print)]
        lots_by_account: dict[int, list[Lot]] = {}
        for lot in Lot.objects.filter(
            account_id__in=account_ids, restriction=restriction, state__in=LIVE_STATES, remaining__gt=0
        ).order_by("pk"):
            lots_by_account.setdefault(lot.account_id, []).append(lot)
        results: list[PointsOperation] = []
        for account_id, lots in lots_by_account.items():
            journal = Journal(
                account=accounts[account_id],
                key=operation_key,
                fingerprint_=key_print,
                now=now,
                actor=actor,
                reason=reason,
                seq_offset=sum(len(result.entries) for result in results),
            )
            total = sum((lot.remaining for lot in lots), ZERO)
            journal.entry(Entry.Kind.UNRESTRICT, total, lots=[(lot, ZERO, ZERO) for lot in lots])
            for lot in lots:
                lot.restriction = Lot.Restriction.NONE
                journal.touch(lot)
            results.append(journal.flush())
        return results


def points_move_to_customer(
    *,
    source: Customer,
    target: Customer,
    operation_key: str,
    actor: Actor = SYSTEM,
    reason: str = "",
    now: datetime | None = None,
) -> list[PointsOperation]:
    """Move all of ``source``'s live points (and debt) to ``target``, per balance type (the merge, F-ID-7).

    Each live lot — and each spent or expired one that could still be clawed back — is closed as ``moved`` by
    a ``move_out`` entry on the source account and re-created on the target account by a ``move_in`` entry —
    same kind, state, expiry, restriction and source (an order line's pending points still unlock on its
    delivery), and an amount of what could still be clawed back from the original, so a later return by source
    takes back what was earned (as debt on the target, for points already spent). Refused with ``holds_open``
    while the source has points held at a checkout. Locks both customers' accounts in pk order; idempotent by
    key.
    """
    now = now or timezone.now()
    key_print = fingerprint(op="move", source=source.pk, target=target.pk)
    with transaction.atomic():
        source_accounts = list(Account.objects.filter(customer=source).values_list("pk", "balance_type_id"))
        target_ids = {type_id: _account_id(target, type_id) for _, type_id in source_accounts}
        accounts = accounts_lock(account_ids=sorted({pk for pk, _ in source_accounts} | set(target_ids.values())))
        if Entry.objects.filter(operation_key=operation_key, operation_seq=0).exists():
            return [replay(key=operation_key, fingerprint_=key_print)]
        results: list[PointsOperation] = []
        for source_id, type_id in source_accounts:
            origin, destination = accounts[source_id], accounts[target_ids[type_id]]
            if origin.held > 0:
                raise HoldsOpen(extra={"customer_id": source.pk, "held": str(origin.held)})
            lots, outstanding = _movable_lots(origin)
            if not lots and origin.debt == 0:
                continue
            offset = sum(len(result.entries) for result in results)
            out = Journal(
                account=origin, key=operation_key, fingerprint_=key_print, now=now, actor=actor, reason=reason,
                seq_offset=offset,
            )  # fmt: skip
            moved_available = sum((lot.remaining for lot in lots if lot.state == Lot.State.ACTIVE), ZERO)
            moved_pending = sum((lot.remaining for lot in lots if lot.state == Lot.State.PENDING), ZERO)
            debt = origin.debt
            # Taken before the move_out line zeroes the originals: what each copy receives.
            remaining = [lot.remaining for lot in lots]
            copies = _copies(lots, outstanding, destination, now)
            out.entry(
                Entry.Kind.MOVE_OUT,
                moved_available + moved_pending + debt,
                available=-moved_available,
                pending=-moved_pending,
                debt=-debt,
                lots=[(lot, -lot.remaining, ZERO) for lot in lots],
            )
            for lot, copy in zip(lots, copies, strict=True):
                lot.state, lot.moved_to = Lot.State.MOVED, copy
                out.touch(lot)
            results.append(out.flush())
            into = Journal(
                account=destination, key=operation_key, fingerprint_=key_print, now=now, actor=actor, reason=reason,
                seq_offset=offset + len(results[-1].entries),
            )  # fmt: skip
            into.entry(
                Entry.Kind.MOVE_IN,
                moved_available + moved_pending + debt,
                available=moved_available,
                pending=moved_pending,
                debt=debt,
                lots=[(copy, points, ZERO) for copy, points in zip(copies, remaining, strict=True)],
            )
            for copy in copies:
                into.settle_debt_from(copy)
            results.append(into.flush())
        return results


def _account_id(customer: Customer, balance_type_id: int) -> int:
    account, _ = Account.objects.get_or_create(customer=customer, balance_type_id=balance_type_id)
    return account.pk


def _movable_lots(account: Account) -> tuple[list[Lot], dict[int, Decimal]]:
    """The lots a merge moves, in pk order, and what could still be clawed back from each settled one.

    Live lots (pending, or active with points left) move with their points. A spent or expired lot moves too
    while part of it could still be clawed back (a return of its order line after the merge): its copy holds
    no points but carries that amount, so the clawback finds it on the survivor and the debt lands there —
    left behind, the debt would sit on the merged duplicate's account where nothing ever pays it.
    """
    candidates = list(
        Lot.objects.filter(account=account).exclude(state__in=[Lot.State.CANCELLED, Lot.State.MOVED]).order_by("pk")
    )
    outstanding = _outstanding([lot for lot in candidates if lot.state != Lot.State.PENDING])
    lots = [
        lot
        for lot in candidates
        if (lot.state in LIVE_STATES and lot.remaining > 0) or outstanding.get(lot.pk, ZERO) > 0
    ]
    return lots, outstanding


def _copies(lots: list[Lot], outstanding: dict[int, Decimal], destination: Account, now: datetime) -> list[Lot]:
    copies = [
        Lot(
            account=destination,
            kind=lot.kind,
            # What can still be clawed back, but never less than the points it holds (remaining <= amount).
            amount=max(outstanding.get(lot.pk, lot.remaining), lot.remaining),
            remaining=ZERO,
            state=lot.state,
            available_from=lot.available_from,
            expires_at=lot.expires_at,
            lifetime_days=lot.lifetime_days,
            restriction=lot.restriction,
            source_type=lot.source_type,
            source_id=lot.source_id,
            created_at=now,
        )
        for lot in lots
    ]
    return Lot.objects.bulk_create(copies)
