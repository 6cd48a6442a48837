"""Idempotency-Key handling for channel writes (SPEC F-INT-2, F-LED-7).

A key is *claimed* by inserting its row (one ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` statement, which needs
no transaction of its own): the unique constraint on (channel, key) lets exactly one concurrent request win. The
winner runs the operation and stores the answer; everyone else waits for that answer (or gets
``request_in_progress`` after ``IDEMPOTENCY_WAIT_SECONDS``) and replays it. A claim whose holder died (no answer after
``IDEMPOTENCY_STALE_AFTER``) may be taken over; operations that move points carry their own
operation keys in the ledger, so a takeover never applies an effect twice.

On PostgreSQL the claim and the stored answer commit without waiting for their WAL flush (``synchronous_commit =
off`` for those two statements only; the operation's own transaction stays durable). A database crash can lose
only the last such rows, and losing them is a case the keys already handle: a lost claim means the operation never
committed either (WAL is written in order, and the operation's durable commit flushes the claim before it), and a
lost answer leaves the key in progress, exactly as a worker that died between the operation and the answer does, so
the retry takes it over once stale and the operation keys replay the effect. Waiting for two more flushes per
request cost about a quarter of the redemption's throughput (bench/orders.py).
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connections, router
from django.utils import timezone

from core.sql import ASYNC_COMMIT_FROM, UPSERT_VENDORS, commits_asynchronously, insert_unless_taken
from integrations.exceptions import IdempotencyKeyReused, RequestInProgress
from integrations.models import Channel, IdempotencyKey

POLL_INTERVAL_SECONDS = 0.05


class ClaimOutcome(enum.Enum):
    CLAIMED = "claimed"  # run the operation, then complete or release the key
    REPLAY = "replay"  # answer with the stored response
    IN_PROGRESS = "in_progress"  # another request holds the key


@dataclass(frozen=True)
class IdempotencyClaim:
    outcome: ClaimOutcome
    record: IdempotencyKey


def idempotency_key_claim(
    *, channel: Channel, key: str, method: str, path: str, fingerprint: str, now: datetime | None = None
) -> IdempotencyClaim:
    """Try once to take ``key`` for this request. Raises ``IdempotencyKeyReused`` on a different request."""
    now = now or timezone.now()
    record = IdempotencyKey(
        channel=channel,
        key=key,
        method=method,
        path=path,
        fingerprint=fingerprint,
        created_at=now,
        locked_at=now,
        expires_at=now + settings.IDEMPOTENCY_KEY_TTL,
    )
    if insert_unless_taken(record, durable=False, plain_values=True):  # strings, integers, aware datetimes
        return IdempotencyClaim(ClaimOutcome.CLAIMED, record)
    record = IdempotencyKey.objects.filter(channel=channel, key=key).first()
    if record is None:  # released or purged between our insert and our read: try again
        return idempotency_key_claim(channel=channel, key=key, method=method, path=path, fingerprint=fingerprint)
    if record.expires_at <= now:
        # Forgotten by policy but not yet purged: a new request may use the key afresh.
        IdempotencyKey.objects.filter(pk=record.pk, expires_at=record.expires_at).delete()
        return idempotency_key_claim(channel=channel, key=key, method=method, path=path, fingerprint=fingerprint)
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReused(extra={"original_path": record.path})
    if record.state == IdempotencyKey.State.COMPLETED:
        return IdempotencyClaim(ClaimOutcome.REPLAY, record)
    if record.locked_at <= now - settings.IDEMPOTENCY_STALE_AFTER:
        taken = IdempotencyKey.objects.filter(
            pk=record.pk, state=IdempotencyKey.State.IN_PROGRESS, locked_at=record.locked_at
        ).update(locked_at=now)
        if taken:
            record.locked_at = now
            return IdempotencyClaim(ClaimOutcome.CLAIMED, record)
    return IdempotencyClaim(ClaimOutcome.IN_PROGRESS, record)


_TABLE = f'"{IdempotencyKey._meta.db_table}"'
_COMPLETE_SQL = (
    f'UPDATE {_TABLE} SET "state" = %s, "response_status" = %s, "response_body" = %s, "completed_at" = %s '
    '{from_}WHERE "id" = %s AND "state" = %s AND "locked_at" = %s'
)


def idempotency_key_acquire(
    *, channel: Channel, key: str, method: str, path: str, fingerprint: str, wait_seconds: float | None = None
) -> IdempotencyClaim:
    """Claim ``key``, waiting for a concurrent holder to finish; ``RequestInProgress`` if it does not in time."""
    wait_seconds = settings.IDEMPOTENCY_WAIT_SECONDS if wait_seconds is None else wait_seconds
    deadline = time.monotonic() + wait_seconds
    while True:
        claim = idempotency_key_claim(channel=channel, key=key, method=method, path=path, fingerprint=fingerprint)
        if claim.outcome is not ClaimOutcome.IN_PROGRESS:
            return claim
        if time.monotonic() >= deadline:
            raise RequestInProgress()
        time.sleep(POLL_INTERVAL_SECONDS)


def idempotency_key_complete(*, record: IdempotencyKey, status: int, body: str) -> None:
    """Store the answer of the claimed request; it is what every retry will receive."""
    completed_at = timezone.now()
    connection = connections[router.db_for_write(IdempotencyKey)]
    if connection.vendor in UPSERT_VENDORS:  # the ORM's update() costs more to build than to run
        ops = connection.ops
        from_ = f"FROM {ASYNC_COMMIT_FROM} " if commits_asynchronously(connection.alias) else ""
        with connection.cursor() as cursor:
            cursor.execute(
                _COMPLETE_SQL.format(from_=from_),
                [
                    IdempotencyKey.State.COMPLETED.value,
                    status,
                    body,
                    ops.adapt_datetimefield_value(completed_at),
                    record.pk,
                    IdempotencyKey.State.IN_PROGRESS.value,
                    ops.adapt_datetimefield_value(record.locked_at),
                ],
            )
        return
    IdempotencyKey.objects.filter(
        pk=record.pk, state=IdempotencyKey.State.IN_PROGRESS, locked_at=record.locked_at
    ).update(
        state=IdempotencyKey.State.COMPLETED,
        response_status=status,
        response_body=body,
        completed_at=completed_at,
    )


def idempotency_key_release(*, record: IdempotencyKey) -> None:
    """Give the key up after a failure that changed nothing (5xx), so a retry runs the operation again."""
    IdempotencyKey.objects.filter(
        pk=record.pk, state=IdempotencyKey.State.IN_PROGRESS, locked_at=record.locked_at
    ).delete()


def idempotency_keys_purge(*, now: datetime | None = None, batch_size: int = 5000) -> int:
    """Delete expired keys in batches; safe to run twice or concurrently. Returns how many were deleted."""
    now = now or timezone.now()
    deleted = 0
    while True:
        batch = list(IdempotencyKey.objects.filter(expires_at__lte=now).values_list("pk", flat=True)[:batch_size])
        if not batch:
            return deleted
        deleted += IdempotencyKey.objects.filter(pk__in=batch, expires_at__lte=now).delete()[0]
