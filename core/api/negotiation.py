"""Content negotiation with a shortcut for what channels send: no ``Accept`` header, ``*/*`` or the first
renderer's own media type. DRF parses the header into media types and matches them against every renderer on each
request; for these the answer is always the first renderer, so the parsing is skipped. Anything else (a format
suffix or ``?format=``, another media type, parameters, several types) goes through DRF's negotiation unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request


class ContentNegotiation(DefaultContentNegotiation):
    def select_renderer(
        self, request: Request, renderers: Sequence[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[Any, str]:
        accept = request.META.get("HTTP_ACCEPT")
        if renderers and not format_suffix and (accept is None or accept in ("*/*", renderers[0].media_type)):
            override = self.settings.URL_FORMAT_OVERRIDE
            # No query string: no ?format=, and no QueryDict built just to find that out.
            if not request.META.get("QUERY_STRING") or not (override and request.query_params.get(override)):
                return renderers[0], renderers[0].media_type
        return super().select_renderer(request, renderers, format_suffix)
