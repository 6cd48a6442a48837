import logging
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

logger = logging.getLogger("loyalty_crm.request")


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
