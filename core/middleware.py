import logging
import time
from collections.abc import Callable

from django.contrib.auth.middleware import AuthenticationMiddleware as DjangoAuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware as DjangoMessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger("loyalty_crm.request")

# The channel API: every view under it authenticates by API key (integrations.authentication), never by session.
CHANNEL_API_PREFIX = "/api/v1/"


class RequestLogMiddleware:
    """Logs every request once: method, path, status, duration and who made it (channel or staff user)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        channel = getattr(request, "channel", None)  # set by ChannelKeyAuthentication
        user = getattr(request, "user", None)
        fields = {
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": duration_ms,
            "channel": channel.code if channel else None,
            "user_id": user.pk if user is not None and user.is_authenticated else None,
        }
        logger.info(
            "%s %s %s %.1fms channel=%s",
            request.method,
            request.path,
            response.status_code,
            duration_ms,
            fields["channel"] or "-",
            extra=fields,
        )
        return response


class _NotForChannelApi:
    """Skips the middleware on channel API requests: sessions, staff users and flash messages serve the admin and
    the till; an API request has none of them, and building them was a tenth of a no-op API request's time."""

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(CHANNEL_API_PREFIX):
            return self.get_response(request)
        return super().__call__(request)


class SessionMiddleware(_NotForChannelApi, DjangoSessionMiddleware):
    pass


class AuthenticationMiddleware(_NotForChannelApi, DjangoAuthenticationMiddleware):
    pass


class MessageMiddleware(_NotForChannelApi, DjangoMessageMiddleware):
    pass
