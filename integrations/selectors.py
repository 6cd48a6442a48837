import time
from functools import cache

from django.conf import settings
from django.db import connection, transaction

from core.sql import RowReader
from integrations.models import ApiKey, Store
from integrations.services.channels import api_key_hash

# Known keys (with their channels) by hash, each until a deadline (time.monotonic()): the lookup was half of a no-op
# API request's time (bench/orders.py). Saving a key or a channel in this process empties the cache at once
# (``api_keys_forget``, connected to post_save in apps.py); other processes see the change within
# API_KEY_CACHE_SECONDS. Unknown keys are never cached, so garbage keys cannot fill it.
_known_keys: dict[str, tuple[float, ApiKey]] = {}
_KNOWN_KEYS_MAX = 10_000


def api_key_get_by_raw(raw_key: str) -> ApiKey | None:
    """The key (with its channel) whose hash matches, revoked or not; None if unknown."""
    key_hash = api_key_hash(raw_key)
    lifetime = settings.API_KEY_CACHE_SECONDS
    if lifetime:
        known = _known_keys.get(key_hash)
        if known is not None and known[0] > time.monotonic():
            return known[1]
    api_key = ApiKey.objects.select_related("channel").filter(key_hash=key_hash).first()
    if lifetime and api_key is not None:
        if len(_known_keys) >= _KNOWN_KEYS_MAX:
            _known_keys.clear()
        _known_keys[key_hash] = (time.monotonic() + lifetime, api_key)
    return api_key


def api_keys_cache_clear() -> None:
    """Empty the cache of known keys now (tests start afresh)."""
    _known_keys.clear()


def api_keys_forget(**_signal: object) -> None:
    """Empty the cache of known keys (a key or a channel changed; tests start afresh) — now, and again when the
    change commits, so that a lookup in between cannot keep the state from before it."""
    _known_keys.clear()
    transaction.on_commit(_known_keys.clear)


_STORE = RowReader(Store)


@cache
def _store_sql() -> str:
    return f"SELECT {_STORE.columns('s')} FROM {Store._meta.db_table} AS s WHERE s.code = %s"


def store_by_code(code: str) -> Store | None:
    """``Store.objects.filter(code=code).first()`` as a plain statement (placing an order reads its store by code;
    the ORM took longer to build the query than to run it)."""
    with connection.cursor() as cursor:
        cursor.execute(_store_sql(), [code])
        row = cursor.fetchone()
    return None if row is None else _STORE.instance(row)
