"""Mass zeroing of balances on a date (F-LED-9): dry-run preview, then one auditable, idempotent run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, QuerySet, Sum
from django.utils import timezone

from points.exceptions import ResetNotDue
from points.locks import account_lock
from points.models import ZERO, Account, BalanceReset, BalanceType, Entry, Lot
from points.services.journal import Actor, Journal, fingerprint


@dataclass(frozen=True)
class ResetPreview:
    accounts: int
    points: Decimal


def points_reset_schedule(
    *,
    balance_type: BalanceType,
    run_at: datetime,
    reason: str,
    created_by: AbstractBaseUser,
    memberships: list[str] | None = None,
) -> BalanceReset:
    return BalanceReset.objects.create(
        balance_type=balance_type, run_at=run_at, reason=reason, created_by=created_by, memberships=memberships or []
    )


def _accounts(reset: BalanceReset) -> QuerySet[Account]:
    accounts = Account.objects.filter(balance_type=reset.balance_type, available__gt=0)
    if reset.memberships:
        accounts = accounts.filter(customer__membership__in=reset.memberships)
    return accounts


def points_reset_preview(*, reset: BalanceReset) -> ResetPreview:
    """What the reset would zero if it ran now (a dry run: changes nothing)."""
    totals = _accounts(reset).aggregate(accounts=Count("pk"), points=Sum("available"))
    return ResetPreview(accounts=totals["accounts"], points=totals["points"] or ZERO)


def points_reset_run(*, reset_id: int, now: datetime | None = None, chunk_size: int = 1000) -> BalanceReset:
    """Zero the available points of every matching account: one ``reset`` entry per account under the key
    ``reset:<id>:account:<id>``, so a re-run (or a crash and retry) skips accounts already done. Pending and
    held points are left alone. ``ResetNotDue`` before ``run_at`` or after the reset finished."""
    now = now or timezone.now()
    reset = BalanceReset.objects.get(pk=reset_id)
    if reset.state != BalanceReset.State.SCHEDULED or reset.run_at > now:
        raise ResetNotDue()
    after = 0
    while True:
        ids = list(_accounts(reset).filter(pk__gt=after).order_by("pk").values_list("pk", flat=True)[:chunk_size])
        if not ids:
            break
        after = ids[-1]
        for account_id in ids:
            _reset_account(reset, account_id, now)
    with transaction.atomic():
        reset = BalanceReset.objects.select_for_update().get(pk=reset_id)
        done = Entry.objects.filter(operation_key__startswith=f"reset:{reset.pk}:", kind=Entry.Kind.RESET)
        totals = done.aggregate(accounts=Count("pk"), points=Sum("amount"))
        reset.state, reset.finished_at = BalanceReset.State.DONE, now
        reset.accounts_reset, reset.points_reset = totals["accounts"], totals["points"] or ZERO
        reset.save()
    return reset


def points_reset_cancel(*, reset_id: int) -> BalanceReset:
    """Call off a scheduled reset; ``ResetNotDue`` if it already ran or was cancelled."""
    with transaction.atomic():
        reset = BalanceReset.objects.select_for_update().get(pk=reset_id)
        if reset.state != BalanceReset.State.SCHEDULED:
            raise ResetNotDue()
        reset.state, reset.finished_at = BalanceReset.State.CANCELLED, timezone.now()
        reset.save(update_fields=["state", "finished_at"])
    return reset


def points_resets_run_due(*, now: datetime | None = None) -> int:
    """Run every scheduled reset whose date has come (beat job). A reset cancelled or finished meanwhile is
    skipped; one interrupted half-way resumes where it stopped (per-account keys)."""
    now = now or timezone.now()
    done = 0
    for reset_id in BalanceReset.objects.filter(state=BalanceReset.State.SCHEDULED, run_at__lte=now).values_list(
        "pk", flat=True
    ):
        try:
            points_reset_run(reset_id=reset_id, now=now)
            done += 1
        except ResetNotDue:
            continue
    return done


def _reset_account(reset: BalanceReset, account_id: int, now: datetime) -> None:
    key = f"reset:{reset.pk}:account:{account_id}"
    with transaction.atomic():
        account = account_lock(account_id=account_id, key=key)
        if account.key_used:
            return
        lots = list(Lot.objects.filter(account=account, state=Lot.State.ACTIVE, remaining__gt=0))
        total = sum((lot.remaining for lot in lots), ZERO)
        if total == 0:
            return
        journal = Journal(
            account=account,
            key=key,
            fingerprint_=fingerprint(op="reset", reset=reset.pk),
            now=now,
            actor=Actor(user=reset.created_by),
            reason=reset.reason,
        )
        journal.entry(Entry.Kind.RESET, total, available=-total, lots=[(lot, -lot.remaining, ZERO) for lot in lots])
        journal.flush()
