"""Expiring due lots in bulk (F-LED-5): set-based, chunked, safe to run twice or concurrently.

Each chunk is one transaction: lock the chunk's accounts (pk order, like every service), then one
statement turns due active lots into expired ones and writes one ``expire`` entry per lot (operation
key ``expire:lot:<id>:<expiry epoch>``, unique), its allocation and the account totals. The conditional
``state = 'active' AND expires_at <= now`` makes a re-run or a re-delivered chunk change nothing, and
the unique keys make a double expiry impossible even in principle. Memory stays flat: a chunk is ids only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from points.locks import accounts_lock, accounts_lock_ids
from points.models import ZERO, Entry, Lot
from points.services.journal import SYSTEM, Journal

logger = logging.getLogger(__name__)


@dataclass
class ExpiryResult:
    lots: int = 0
    points: object = ZERO
    chunks: int = 0


def points_expire_due(
    *, now: datetime | None = None, chunk_size: int | None = None, max_chunks: int | None = None
) -> ExpiryResult:
    now = now or timezone.now()
    chunk_size = chunk_size or settings.POINTS_EXPIRY_CHUNK_SIZE
    result = ExpiryResult()
    after_id = 0
    while max_chunks is None or result.chunks < max_chunks:
        # Walk due lots by id: a chunk another run holds is waited for, then found already expired.
        ids = list(
            Lot.objects.filter(state=Lot.State.ACTIVE, expires_at__lte=now, pk__gt=after_id)
            .order_by("pk")
            .values_list("pk", "account_id")[:chunk_size]
        )
        if not ids:
            break
        after_id = ids[-1][0]
        lots, points = _expire_chunk(lot_ids=[i for i, _ in ids], account_ids=sorted({a for _, a in ids}), now=now)
        result.lots += lots
        result.points += points
        result.chunks += 1
        logger.info(
            "points expiry: chunk %d, %d lots, %s points (total %d lots)", result.chunks, lots, points, result.lots
        )
    return result


def _expire_chunk(*, lot_ids: list[int], account_ids: list[int], now: datetime) -> tuple[int, object]:
    with transaction.atomic():
        if connection.vendor == "postgresql":
            accounts_lock_ids(account_ids=account_ids)  # the statement reads and writes them itself
            return _expire_chunk_sql(lot_ids, now)
        return _expire_chunk_orm(lot_ids, accounts_lock(account_ids=account_ids), now)


EXPIRE_CHUNK_SQL = """
WITH due AS (
    SELECT id, account_id, remaining,
           'expire:lot:' || id || ':' || EXTRACT(EPOCH FROM expires_at)::bigint AS operation_key
    FROM points_lot
    WHERE id = ANY(%(ids)s) AND state = 'active' AND expires_at <= %(now)s
), expired AS (
    UPDATE points_lot lot SET state = 'expired', remaining = 0
    FROM due WHERE lot.id = due.id
    RETURNING lot.id, lot.account_id, due.remaining, due.operation_key
), entries AS (
    INSERT INTO points_entry (account_id, kind, amount, available_delta, pending_delta, held_delta, debt_delta,
                              operation_key, operation_seq, fingerprint, reason, created_at)
    SELECT account_id, 'expire', remaining, -remaining, 0, 0, 0, operation_key, 0, '', '', %(now)s
    FROM expired
    RETURNING id, operation_key
), allocations AS (
    INSERT INTO points_allocation (entry_id, lot_id, remaining_delta, held_delta)
    SELECT entries.id, expired.id, -expired.remaining, 0
    FROM entries JOIN expired USING (operation_key)
), totals AS (
    UPDATE points_account account SET available = account.available - sums.points, updated_at = %(now)s
    FROM (SELECT account_id, SUM(remaining) AS points FROM expired GROUP BY account_id) sums
    WHERE account.id = sums.account_id
)
SELECT COUNT(*), COALESCE(SUM(remaining), 0) FROM expired
"""


def _expire_chunk_sql(lot_ids: list[int], now: datetime) -> tuple[int, object]:
    with connection.cursor() as cursor:
        cursor.execute(EXPIRE_CHUNK_SQL, {"ids": lot_ids, "now": now})
        return tuple(cursor.fetchone())


def expiry_key(lot: Lot) -> str:
    """One expiry per lot per expiry date: a lot revived by a refund may expire again, under a new key."""
    return f"expire:lot:{lot.pk}:{int(lot.expires_at.timestamp())}"


def _expire_chunk_orm(lot_ids: list[int], accounts: dict, now: datetime) -> tuple[int, object]:
    """The same effect for SQLite (the embedded default), through the journal unit of work."""
    lots = Lot.objects.filter(Q(pk__in=lot_ids), state=Lot.State.ACTIVE, expires_at__lte=now).order_by("pk")
    count, points = 0, ZERO
    for lot in lots:
        journal = Journal(account=accounts[lot.account_id], key=expiry_key(lot), fingerprint_="", now=now, actor=SYSTEM)
        remaining = lot.remaining
        lot.state = Lot.State.EXPIRED
        journal.entry(Entry.Kind.EXPIRE, remaining, available=-remaining, lots=[(lot, -remaining, ZERO)])
        journal.touch(lot)
        journal.flush()
        count, points = count + 1, points + remaining
    return count, points
