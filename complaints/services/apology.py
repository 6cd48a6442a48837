"""Apology points (SPEC: apology points instead of discounts): granted on a complaint case with a reason, issued at
once within the operator's budget, otherwise held for a CRM manager's approval.

Lock order, the same everywhere: the case row, then the operator's user row, then (inside the ledger) the points
account. Approval and rejection lock the grant row, then the account. The ledger is written only through
``points.services.points_accrue``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from complaints.exceptions import (
    ApologyAmountInvalid,
    ApologyKeyConflict,
    ApologyNotAllowed,
    ApologyNotAwaitingApproval,
    ApologyNoteRequired,
    ApologyReasonRequired,
    ApologySelfApproval,
    ComplaintClosed,
)
from complaints.models import ApologyGrant, ComplaintCase
from complaints.selectors import ApologyAllowance, apology_allowance
from core.actors import Actor
from customers.models import Customer
from customers.services import customer_balance_type
from points.exceptions import InvalidAmount
from points.models import BalanceType, Entry, LotKind, LotLifetime
from points.services import points_accrue
from points.services.journal import points_amount
from staff.models import AuditRecord
from staff.services import audit_record

ISSUE_PERMISSION = "complaints.issue_apology"
APPROVE_PERMISSION = "complaints.approve_apology"
APOLOGY_LIFETIME_DAYS = 180


@dataclass(frozen=True)
class ApologyOutcome:
    """What ``apology_grant`` did (or, for a repeated operation key, had done)."""

    grant: ApologyGrant
    replayed: bool = False

    @property
    def issued(self) -> bool:
        return self.grant.state == ApologyGrant.State.ISSUED


def _staff_user(actor: Actor, permission: str) -> AbstractBaseUser:
    user = actor.user
    if user is None or not user.has_perm(permission):
        raise ApologyNotAllowed(extra={"permission": permission})
    return user


def _amount(value: Decimal | int | str) -> Decimal:
    try:
        return points_amount(value)
    except InvalidAmount:
        raise ApologyAmountInvalid(extra={"amount": str(value)}) from None


def _snapshot(grant: ApologyGrant) -> dict[str, Any]:
    return {
        "state": grant.state,
        "amount": grant.amount,
        "case_id": grant.case_id,
        "decided_by": grant.decided_by_id,
        "entry_id": grant.entry_id,
    }


def _allowance_snapshot(allowance: ApologyAllowance) -> dict[str, Any]:
    return {
        "budget_id": allowance.budget.pk if allowance.budget is not None else None,
        "daily_remaining": allowance.daily_remaining,
        "case_remaining": allowance.case_remaining,
    }


def _accrue(
    *, customer: Customer, case_id: int, amount: Decimal, reason: str, grant_key: str, actor: Actor, now: datetime
) -> Entry:
    """The grant's points: an active lot of kind ``apology`` (its lifetime is the balance type's for apology
    lots), tied to the case. The ledger key is derived from the grant's key, so it is booked at most once."""
    operation = points_accrue(
        customer=customer,
        amount=amount,
        kind=LotKind.APOLOGY,
        balance_type=customer_balance_type(customer),
        operation_key=f"apology:{grant_key}",
        source_type="complaint",
        source_id=str(case_id),
        actor=actor,
        reason=reason,
        now=now,
    )
    return operation.entries[0]


def _replay(grant: ApologyGrant, *, case: ComplaintCase, amount: Decimal) -> ApologyOutcome:
    if grant.case_id != case.pk or grant.amount != amount:
        raise ApologyKeyConflict(extra={"operation_key": grant.operation_key})
    return ApologyOutcome(grant=grant, replayed=True)


def _operator_lock(user: AbstractBaseUser) -> None:
    """The operator's user row, locked: their grants of the day are counted and added one at a time."""
    list(get_user_model().objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True))


def apology_grant(
    *,
    case: ComplaintCase,
    amount: Decimal | int | str,
    reason: str,
    actor: Actor,
    operation_key: str,
    now: datetime | None = None,
) -> ApologyOutcome:
    """Grant apology points on an open case. Within the operator's budget — today's grants (issued or awaiting,
    in the local day) plus this one within the daily limit, and the case's grants plus this one within the case
    limit — the points are issued at once; otherwise (or without any budget) the grant waits for approval and
    no points are booked. Audited as APOLOGY_GRANT or APOLOGY_REQUEST.

    Needs ``complaints.issue_apology`` and a reason. Locks the case row, then the operator's user row, so two
    grants racing for the last of a budget are counted one after the other: one fits, the other waits. The
    operation key is unique: a repeat (a resubmitted form, even a concurrent one) returns the first grant.
    """
    amount = _amount(amount)
    reason = reason.strip()
    if not reason:
        raise ApologyReasonRequired()
    user = _staff_user(actor, ISSUE_PERMISSION)
    now = now or timezone.now()
    try:
        return _grant(case=case, amount=amount, reason=reason, actor=actor, user=user, key=operation_key, now=now)
    except IntegrityError:
        # Another request with this key committed between our check and our insert (only possible for requests
        # of different cases or operators: the same ones queue on the locks and see it).
        existing = ApologyGrant.objects.filter(operation_key=operation_key).first()
        if existing is None:
            raise
        return _replay(existing, case=case, amount=amount)


def _grant(
    *,
    case: ComplaintCase,
    amount: Decimal,
    reason: str,
    actor: Actor,
    user: AbstractBaseUser,
    key: str,
    now: datetime,
) -> ApologyOutcome:
    with transaction.atomic():
        locked = ComplaintCase.objects.select_for_update(of=("self",)).select_related("customer").get(pk=case.pk)
        _operator_lock(user)
        existing = ApologyGrant.objects.filter(operation_key=key).first()  # read after the locks: sees a repeat
        if existing is not None:
            return _replay(existing, case=locked, amount=amount)
        if locked.is_closed:
            raise ComplaintClosed(extra={"case_id": locked.pk, "status": locked.status})
        allowance = apology_allowance(user=user, case=locked, now=now)
        grant = ApologyGrant(
            case=locked,
            customer=locked.customer,
            amount=amount,
            reason=reason,
            state=ApologyGrant.State.AWAITING,
            operation_key=key,
            requested_by=user,
            created_at=now,
        )
        if allowance.covers(amount):
            grant.state = ApologyGrant.State.ISSUED
            grant.entry = _accrue(
                customer=locked.customer,
                case_id=locked.pk,
                amount=amount,
                reason=reason,
                grant_key=key,
                actor=actor,
                now=now,
            )
        grant.save(force_insert=True)
        audit_record(
            actor=actor,
            action=AuditRecord.Action.APOLOGY_GRANT if grant.entry_id else AuditRecord.Action.APOLOGY_REQUEST,
            target=grant,
            reason=reason,
            before=_allowance_snapshot(allowance),
            after=_snapshot(grant),
            customer_id=grant.customer_id,
            now=now,
        )
    return ApologyOutcome(grant=grant)


def _awaiting_lock(grant: ApologyGrant) -> ApologyGrant:
    locked = ApologyGrant.objects.select_for_update(of=("self",)).select_related("customer", "case").get(pk=grant.pk)
    if locked.state != ApologyGrant.State.AWAITING:
        raise ApologyNotAwaitingApproval(extra={"grant_id": locked.pk, "state": locked.state})
    return locked


def apology_approve(*, grant: ApologyGrant, actor: Actor, note: str = "", now: datetime | None = None) -> ApologyGrant:
    """Approve a grant awaiting approval: its points are issued now, by the approver. Needs
    ``complaints.approve_apology``; the operator who asked cannot approve their own grant. Locks the grant row:
    of two approvals (or an approval and a rejection) one wins, the other gets ``ApologyNotAwaitingApproval``.
    Audited as APOLOGY_APPROVE."""
    user = _staff_user(actor, APPROVE_PERMISSION)
    now = now or timezone.now()
    note = note.strip()
    with transaction.atomic():
        locked = _awaiting_lock(grant)
        if locked.requested_by_id == user.pk:
            raise ApologySelfApproval(extra={"grant_id": locked.pk})
        before = _snapshot(locked)
        locked.entry = _accrue(
            customer=locked.customer,
            case_id=locked.case_id,
            amount=locked.amount,
            reason=locked.reason,
            grant_key=locked.operation_key,
            actor=actor,
            now=now,
        )
        locked.state = ApologyGrant.State.ISSUED
        locked.decided_by, locked.decided_at, locked.decision_note = user, now, note
        locked.save(update_fields=["entry", "state", "decided_by", "decided_at", "decision_note"])
        audit_record(
            actor=actor,
            action=AuditRecord.Action.APOLOGY_APPROVE,
            target=locked,
            reason=note or locked.reason,
            before=before,
            after=_snapshot(locked),
            customer_id=locked.customer_id,
            now=now,
        )
    return locked


def apology_reject(*, grant: ApologyGrant, actor: Actor, note: str, now: datetime | None = None) -> ApologyGrant:
    """Reject a grant awaiting approval, with a note for the operator: no points are booked, and its amount no
    longer counts against the operator's day or the case. Needs ``complaints.approve_apology``; locks the grant
    row like ``apology_approve``. Audited as APOLOGY_REJECT."""
    user = _staff_user(actor, APPROVE_PERMISSION)
    note = note.strip()
    if not note:
        raise ApologyNoteRequired()
    now = now or timezone.now()
    with transaction.atomic():
        locked = _awaiting_lock(grant)
        before = _snapshot(locked)
        locked.state = ApologyGrant.State.REJECTED
        locked.decided_by, locked.decided_at, locked.decision_note = user, now, note
        locked.save(update_fields=["state", "decided_by", "decided_at", "decision_note"])
        audit_record(
            actor=actor,
            action=AuditRecord.Action.APOLOGY_REJECT,
            target=locked,
            reason=note,
            before=before,
            after=_snapshot(locked),
            customer_id=locked.customer_id,
            now=now,
        )
    return locked


def apology_lifetimes_ensure() -> None:
    """Every balance type's lifetime for apology lots (180 days) where none is set. The data migration does this;
    tests call it after a flush."""
    for balance_type in BalanceType.objects.all():
        LotLifetime.objects.get_or_create(
            balance_type=balance_type, kind=LotKind.APOLOGY, defaults={"lifetime_days": APOLOGY_LIFETIME_DAYS}
        )
