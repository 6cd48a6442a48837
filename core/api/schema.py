"""OpenAPI generation that documents the error answers of every operation, with examples.

An operation's errors are collected from what actually applies to it: authentication, scopes and
throttling for channel endpoints, the ``Idempotency-Key`` contract for ``@idempotent`` handlers,
validation for handlers with a body, and whatever the handler declares with ``@documents_errors``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse

from core.api.errors import ErrorSerializer, error_body
from core.exceptions import ERROR_CATALOGUE, ApplicationError

CHANNEL_AUTH_ERRORS = (
    "not_authenticated",
    "invalid_api_key",
    "api_key_revoked",
    "channel_inactive",
    "missing_scope",
    "throttled",
)
IDEMPOTENCY_ERRORS = ("idempotency_key_required", "request_in_progress", "idempotency_key_reused")
BODY_ERRORS = ("validation_error", "parse_error", "unsupported_media_type")

IDEMPOTENCY_KEY_HEADER_DOC = (
    "Unique per channel for one logical operation (e.g. a UUID). A retry with the same key and "
    "body returns the original answer and changes nothing; the same key with another body is "
    "refused with 422 `idempotency_key_reused`."
)


def documents_errors(*errors: str | type[ApplicationError]) -> Callable:
    """Declare the application errors a handler may answer with, for the schema."""
    codes = tuple(error if isinstance(error, str) else error.code for error in errors)

    def decorate(handler: Callable) -> Callable:
        handler.documented_errors = (*getattr(handler, "documented_errors", ()), *codes)
        return handler

    return decorate


def error_responses(codes: Iterable[str]) -> dict[int, OpenApiResponse]:
    by_status: dict[int, list[str]] = defaultdict(list)
    for code in dict.fromkeys(codes):
        by_status[ERROR_CATALOGUE[code].status].append(code)
    return {
        status: OpenApiResponse(
            response=ErrorSerializer,
            description=", ".join(f"`{code}`" for code in status_codes),
            examples=[
                OpenApiExample(
                    code,
                    value=error_body(code, ERROR_CATALOGUE[code].message),
                    status_codes=[str(status)],
                    response_only=True,
                )
                for code in status_codes
            ],
        )
        for status, status_codes in sorted(by_status.items())
    }


class AutoSchema(SpectacularAutoSchema):
    def _handler(self) -> Callable | None:
        return getattr(self.view, self.method.lower(), None)

    def _idempotency_required(self) -> bool | None:
        return getattr(self._handler(), "idempotency_required", None)

    def _error_codes(self) -> list[str]:
        codes: list[str] = []
        if self.view.authentication_classes:
            codes += CHANNEL_AUTH_ERRORS
            if not getattr(self.view, "required_scopes", None):
                codes.remove("missing_scope")
        if self.method in ("POST", "PUT", "PATCH"):
            codes += BODY_ERRORS
        if self._idempotency_required() is not None:
            codes += IDEMPOTENCY_ERRORS
            if not self._idempotency_required():
                codes.remove("idempotency_key_required")
        if self.method == "GET" and self._is_list_view():
            if getattr(self.view, "pagination_class", None):
                codes.append("invalid_page")
            if getattr(self.view, "filterset_class", None):
                codes.append("validation_error")
        codes += getattr(self._handler(), "documented_errors", ())
        return codes

    def get_override_parameters(self) -> list[Any]:
        parameters = list(super().get_override_parameters())
        required = self._idempotency_required()
        if required is not None:
            parameters.append(
                OpenApiParameter(
                    "Idempotency-Key",
                    str,
                    OpenApiParameter.HEADER,
                    required=required,
                    description=IDEMPOTENCY_KEY_HEADER_DOC,
                )
            )
        return parameters

    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        # Hooked here rather than in get_response_serializers, which @extend_schema(responses=…) replaces.
        responses = super()._get_response_bodies(direction=direction)
        for status, response in error_responses(self._error_codes()).items():
            responses.setdefault(str(status), self._get_response_for_code(response, str(status), direction=direction))
        return responses
