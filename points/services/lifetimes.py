from datetime import datetime, time, timedelta

from django.utils import timezone

from points.models import BalanceType, LotLifetime


def lifetime_days(*, balance_type: BalanceType, kind: str) -> int | None:
    """Days a lot of ``kind`` lives once available: per kind if configured, else the balance type's default."""
    specific = LotLifetime.objects.filter(balance_type=balance_type, kind=kind).first()
    return specific.lifetime_days if specific is not None else balance_type.default_lifetime_days


# ``lifetime_days`` as an SQL expression (parameters: balance type id, kind, its default), for a statement that
# inserts the lots (``Journal.lots_create``): a kind's row wins even where its days are null (never expires).
LIFETIME_DAYS_SQL = (
    "(COALESCE((SELECT ARRAY[lt.lifetime_days] FROM points_lotlifetime lt"
    " WHERE lt.balance_type_id = %s AND lt.kind = %s ORDER BY lt.id LIMIT 1), ARRAY[%s::integer]))[1]"
)


def expiry_from(start: datetime, days: int | None) -> datetime | None:
    """Points live ``days`` whole days and expire at the end of the last one in the business timezone
    (``TIME_ZONE``): the expiry moment is the midnight that starts the following day."""
    if days is None:
        return None
    last_day = timezone.localdate(start) + timedelta(days=days)
    return timezone.make_aware(datetime.combine(last_day + timedelta(days=1), time.min))


DEFAULT_BALANCE_TYPES = {"retail": "Retail points", "b2b": "B2B points"}


def balance_types_ensure_defaults() -> None:
    """The default balance types with the case studies' lifetimes (welcome 90 days, others 365).
    The migration creates them; this restores them where a test flushed the database."""
    for code, name in DEFAULT_BALANCE_TYPES.items():
        balance_type, _ = BalanceType.objects.get_or_create(code=code, defaults={"name": name})
        LotLifetime.objects.get_or_create(balance_type=balance_type, kind="welcome", defaults={"lifetime_days": 90})
