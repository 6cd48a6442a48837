"""The channels' request budgets (SPEC F-INT): a fixed-window counter per channel in the shared cache.

DRF's ``SimpleRateThrottle`` keeps a list of every request's timestamp in the window and reads and rewrites the
whole list on each request: at 1,200/min that is a list of up to 1,200 floats pickled twice per request (a third
of a no-op request's time in bench/orders.py). A counter per window costs one ``add`` or ``incr`` whatever the
rate; the price is that a client may spend up to two windows' budget across a window boundary.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from integrations.authentication import ChannelPrincipal

if TYPE_CHECKING:
    from rest_framework.views import APIView


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
        key = f"{key}:{self.duration}:{window}"
        # ``add`` creates the window's counter (a no-op if it exists); ``incr`` is atomic in Redis and locmem.
        if cache.add(key, 1, timeout=self.duration + 1):
            count = 1
        else:
            try:
                count = cache.incr(key)
            except ValueError:  # expired between the two calls: this request opens the window again
                cache.add(key, 1, timeout=self.duration + 1)
                count = 1
        self.now = now
        return count <= self.num_requests

    def wait(self) -> float:
        return max(self.window_ends - self.now, 1.0)

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        if not isinstance(request.user, ChannelPrincipal):
            return None  # unauthenticated requests are refused before they cost anything
        return f"throttle:channel:{request.user.channel.pk}"
