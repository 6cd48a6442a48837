"""The channels' request budgets (SPEC F-INT): a fixed-window counter per channel in the shared cache.

DRF's ``SimpleRateThrottle`` keeps a list of every request's timestamp in the window and reads and rewrites the
whole list on each request: at 1,200/min that is a list of up to 1,200 floats pickled twice per request (a third
of a no-op request's time in bench/orders.py). A counter per window costs one increment whatever the rate; the
price is that a client may spend up to two windows' budget across a window boundary.

On Redis the increment is one round trip: a Lua script (INCR, and EXPIRE when it created the counter), called
through a redis-py client kept per cache backend. Django's RedisCache builds a new redis-py client for every call
(hundreds of dict insertions each) and its ``incr`` is EXISTS then INCRBY, so ``add`` + ``incr`` cost three round
trips and two client constructions: about half of a no-op request's CPU. Other caches (local memory in tests and
development) count with ``add`` + ``incr``.

A large budget is taken from the shared counter in leases: a worker thread counts 1% of the window's budget at once
(for budgets of ``LEASE_FROM`` requests or more) and spends it locally, so a busy channel costs a Redis round trip
per hundred requests, not per request. The counter counts permits handed out, so a window still never admits more
than its budget; the price is that permits one thread leased and did not spend are lost at the window's end, and a
client may be refused up to (threads - 1)% of the budget early. Budgets below ``LEASE_FROM`` are counted exactly.
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.redis import RedisCache
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from integrations.authentication import ChannelPrincipal

if TYPE_CHECKING:
    from rest_framework.views import APIView

# KEYS[1]: the window's counter, ARGV[1]: its lifetime in seconds, ARGV[2]: how many to count. Atomic: a counter
# never lives without expiry.
_INCR_WITH_EXPIRY = """
local count = redis.call('INCRBY', KEYS[1], ARGV[2])
if count == tonumber(ARGV[2]) then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""
LEASE_FROM = 200  # budgets per window from which permits are leased, 1% at a time
LEASE_PARTS = 100
# The script bound to a client of each Redis cache backend (one backend per thread; they share a connection pool).
_redis_scripts: weakref.WeakKeyDictionary[RedisCache, Any] = weakref.WeakKeyDictionary()


def window_counter_incr(key: str, timeout: int, *, amount: int = 1, backend: BaseCache | None = None) -> int:
    """Count ``amount`` more requests under ``key`` (a new counter lives ``timeout`` seconds); returns the count."""
    backend = backend or caches[DEFAULT_CACHE_ALIAS]
    if isinstance(backend, RedisCache):
        script = _redis_scripts.get(backend)
        if script is None:
            client = backend._cache.get_client(write=True)
            script = _redis_scripts[backend] = client.register_script(_INCR_WITH_EXPIRY)
        # The same key as ``backend.add(key, ...)`` would use (prefix and version), so both ways share counters.
        return int(script(keys=[backend.make_and_validate_key(key)], args=[timeout, amount]))
    # ``add`` creates the window's counter (a no-op if it exists); ``incr`` is atomic in every Django cache.
    if backend.add(key, amount, timeout=timeout):
        return amount
    try:
        return backend.incr(key, amount)
    except ValueError:  # expired between the two calls: this request opens the window again
        backend.add(key, amount, timeout=timeout)
        return amount


_leases = threading.local()  # counter key -> [its window's end, permits this thread leased and has not spent]


def window_permit_take(key: str, timeout: int, budget: int, *, window_ends: float, now: float) -> bool:
    """One permit of ``budget`` under the window counter ``key``: from this thread's lease, or a new lease of 1% of
    the budget (exactly one permit under ``LEASE_FROM``); False when the window's budget is spent."""
    if budget < LEASE_FROM:
        return window_counter_incr(key, timeout) <= budget
    leased = getattr(_leases, "permits", None)
    if leased is None:
        leased = _leases.permits = {}
    lease = leased.get(key)
    if lease is not None and lease[1] > 0:
        lease[1] -= 1
        return True
    size = budget // LEASE_PARTS
    count = window_counter_incr(key, timeout, amount=size)
    granted = min(size, budget - (count - size))  # the part of this lease still within the budget
    if lease is None and len(leased) >= 32:  # forget the leftovers of windows that are over
        for other in [other for other, (ends, _left) in leased.items() if ends <= now]:
            del leased[other]
    leased[key] = [window_ends, max(granted - 1, 0)]
    return granted > 0


class ChannelRateThrottle(SimpleRateThrottle):
    """One request budget per channel (its own ``rate_limit`` or the installation default)."""

    scope = "channel"
    timer = time.time

    def allow_request(self, request: Request, view: APIView) -> bool:
        if isinstance(request.user, ChannelPrincipal) and request.user.channel.rate_limit:
            self.rate = request.user.channel.rate_limit
            self.num_requests, self.duration = self.parse_rate(self.rate)
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        now = self.timer()
        window = math.floor(now / self.duration)
        self.window_ends = (window + 1) * self.duration
        self.now = now
        counter = f"{key}:{self.duration}:{window}"
        return window_permit_take(counter, self.duration + 1, self.num_requests, window_ends=self.window_ends, now=now)

    def wait(self) -> float:
        return max(self.window_ends - self.now, 1.0)

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        if not isinstance(request.user, ChannelPrincipal):
            return None  # unauthenticated requests are refused before they cost anything
        return f"throttle:channel:{request.user.channel.pk}"
