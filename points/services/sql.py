"""``points_redeem``, ``points_hold`` and ``points_hold_commit`` in one round trip on PostgreSQL.

The PL/pgSQL functions of migration points 0009 do what these services do through ``Journal`` (same lock, same
lots in the same order, same journal lines); this module calls them and turns their answer into the services'
results and errors. Only those three services call it, and only when ``sql_functions_enabled()``: on SQLite, or
with ``POINTS_LEDGER_SQL_FUNCTIONS`` off, the services run their Python version (tests compare the two).
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction

from customers.exceptions import CustomerMerged
from points.exceptions import HoldNotFound, HoldNotOpen, InsufficientPoints, InvalidAmount, UnknownBalanceType
from points.models import ZERO, Account, BalanceType, Entry, Hold
from points.selectors import Balance
from points.services.journal import Actor, PointsOperation, replay

EXPIRING_WITHIN_DAYS = 30  # the "expiring soon" of the balance an operation answers with (as points_balance)

TAKE_SQL = "SELECT points_ledger_take(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
BIGINT_MAX = 2**63 - 1
COMMIT_SQL = "SELECT points_ledger_commit(%s, %s, %s, %s, %s, %s, %s, %s)"


def sql_functions_enabled() -> bool:
    return connection.vendor == "postgresql" and settings.POINTS_LEDGER_SQL_FUNCTIONS


def ledger_take(
    *,
    kind: str,
    customer_id: int,
    balance_type: str,
    amount: Decimal,
    operation_key: str,
    fingerprint_: str,
    first_order: bool,
    now: datetime,
    actor: Actor,
    reason: str = "",
    hold_expires_at: datetime | None = None,
    savepoint: bool = True,
) -> PointsOperation:
    """A redemption (``kind`` "redeem") or a hold (``kind`` "hold") of ``amount``."""
    answer = _call(
        TAKE_SQL,
        [
            *(kind, customer_id, balance_type, amount, operation_key, fingerprint_, first_order, hold_expires_at, now),
            *(_pk(actor.channel), _pk(actor.user), reason, EXPIRING_WITHIN_DAYS),
        ],
        savepoint=savepoint,
    )
    if answer.get("replay"):
        return replay(key=operation_key, fingerprint_=fingerprint_)
    error = answer.get("error")
    if error == "unknown_balance_type":
        raise UnknownBalanceType(extra={"balance_type": balance_type})
    if error == "customer_merged":
        raise CustomerMerged(extra={"customer_id": customer_id, "merged_into": answer["merged_into"]})
    if error == "insufficient_points":
        raise InsufficientPoints(extra={"spendable": str(answer["spendable"]), "requested": str(amount)})
    assert error is None, error
    account = _account(answer, customer_id=customer_id, balance_type=balance_type)
    holding = kind == Entry.Kind.HOLD
    hold = None
    if holding:
        hold = Hold(
            pk=answer["hold_id"],
            account=account,
            amount=amount,
            state=Hold.State.OPEN,
            operation_key=operation_key,
            expires_at=hold_expires_at,
            created_at=now,
        )
        _saved(hold)
    line = _Lines(account, answer["entry_ids"], operation_key, actor, now)
    entry = line(kind, amount, fingerprint_, reason, hold, available=-amount, held=amount if holding else ZERO)
    return PointsOperation(
        operation_key,
        [entry],
        _allocations(answer),
        hold=hold,
        balance=_balance(answer, balance_type),
    )


def ledger_commit(
    *,
    hold_id: int,
    amount: Decimal | None,
    operation_key: str,
    fingerprint_: str,
    now: datetime,
    actor: Actor,
    savepoint: bool = True,
) -> PointsOperation:
    """Spend ``amount`` (all when None) of an open hold and release the rest."""
    if not 0 < hold_id <= BIGINT_MAX:  # no such row; and past bigint the function's signature would not match
        raise HoldNotFound()
    answer = _call(
        COMMIT_SQL,
        [hold_id, amount, operation_key, fingerprint_, now, _pk(actor.channel), _pk(actor.user), EXPIRING_WITHIN_DAYS],
        savepoint=savepoint,
    )
    if answer.get("replay"):
        return replay(key=operation_key, fingerprint_=fingerprint_)
    error = answer.get("error")
    if error == "hold_not_found":
        raise HoldNotFound()
    if error == "hold_not_open":
        raise HoldNotOpen(extra={"state": answer["state"]})
    if error == "invalid_amount":
        raise InvalidAmount(extra={"held": str(answer["held"])})
    assert error is None, error
    account = _account(answer, customer_id=answer["customer_id"], balance_type=answer["balance_type"])
    held = answer["hold"]
    hold = Hold(
        pk=hold_id,
        account=account,
        amount=held["amount"],
        state=Hold.State.COMMITTED,
        operation_key=held["operation_key"],
        expires_at=datetime.fromisoformat(held["expires_at"]),
        created_at=datetime.fromisoformat(held["created_at"]),
        closed_at=now,
    )
    _saved(hold)
    spent, released, expired = answer["amount"], answer["released"], answer["expired"]
    line = _Lines(account, answer["entry_ids"], operation_key, actor, now)
    entries = [line(Entry.Kind.REDEEM, spent, fingerprint_, "", hold, held=-spent)]
    if released > 0:
        entries.append(line(Entry.Kind.RELEASE, released, "", "", hold, available=released, held=-released))
    if expired > 0:
        entries.append(line(Entry.Kind.EXPIRE, expired, "", "", None, available=-expired))
    return PointsOperation(
        operation_key, entries, _allocations(answer), hold=hold, balance=_balance(answer, answer["balance_type"])
    )


def _call(sql: str, parameters: list, *, savepoint: bool = True) -> dict:
    # Alone, the call is a transaction of its own. Inside a caller's transaction it gets a savepoint (unless the
    # caller says none is needed), so that a constraint violation (a key raced on another account) leaves that
    # transaction usable for the retry; without one, the atomic block marks the caller's transaction for rollback.
    in_transaction = connection.in_atomic_block
    with transaction.atomic(savepoint=savepoint) if in_transaction else nullcontext(), connection.cursor() as cursor:
        cursor.execute(sql, parameters)
        (answer,) = cursor.fetchone()
    return json.loads(answer, parse_float=Decimal)


def _pk(instance) -> int | None:
    return instance.pk if instance is not None else None


def _saved(instance) -> None:
    """Mark an instance built from the function's answer as a row that exists (as ``Model.from_db`` does)."""
    instance._state.adding = False
    instance._state.db = connection.alias


def _account(answer: dict, *, customer_id: int, balance_type: str) -> Account:
    balance = answer["balance"]
    account = Account(
        pk=answer["account_id"],
        customer_id=customer_id,
        balance_type=BalanceType(pk=answer["balance_type_id"], code=balance_type),
        available=balance["available"],
        pending=balance["pending"],
        held=balance["held"],
        debt=balance["debt"],
    )
    _saved(account)
    return account


class _Lines:
    """The journal lines a function wrote, as ``Entry`` objects: its ids, in operation_seq order."""

    def __init__(self, account: Account, ids: list[int], key: str, actor: Actor, now: datetime) -> None:
        self.account, self.ids, self.key, self.actor, self.now = account, iter(ids), key, actor, now
        self.seq = 0

    def __call__(self, kind, amount, fingerprint_, reason, hold, *, available=ZERO, held=ZERO) -> Entry:
        entry = Entry(
            pk=next(self.ids),
            account=self.account,
            kind=kind,
            amount=amount,
            available_delta=available,
            held_delta=held,
            operation_key=self.key,
            operation_seq=self.seq,
            fingerprint=fingerprint_,
            actor_channel=self.actor.channel,
            actor_user=self.actor.user,
            reason=reason,
            hold=hold,
            created_at=self.now,
        )
        _saved(entry)
        self.seq += 1
        return entry


def _allocations(answer: dict) -> dict[int, Decimal]:
    return dict(zip(answer["lot_ids"], answer["parts"], strict=True))


def _balance(answer: dict, balance_type: str) -> Balance:
    balance = answer["balance"]
    return Balance(
        balance_type,
        balance["available"],
        balance["pending"],
        balance["held"],
        balance["debt"],
        balance["expiring"],
        EXPIRING_WITHIN_DAYS,
    )
