from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from integrations.authentication import ChannelPrincipal

if TYPE_CHECKING:
    from rest_framework.views import APIView


class ChannelRateThrottle(SimpleRateThrottle):
    """One request budget per channel (its own ``rate_limit`` or the installation default)."""

    scope = "channel"

    def allow_request(self, request: Request, view: APIView) -> bool:
        if isinstance(request.user, ChannelPrincipal) and request.user.channel.rate_limit:
            self.rate = request.user.channel.rate_limit
            self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        if not isinstance(request.user, ChannelPrincipal):
            return None  # unauthenticated requests are refused before they cost anything
        return f"throttle:channel:{request.user.channel.pk}"
