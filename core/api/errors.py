"""The single error format of the API: ``{"error": {"code", "message", "fields"}}``.

Every 4xx — DRF's own exceptions, Django's, and ``ApplicationError`` — goes through
``exception_handler``; ``fields`` maps a dotted field path to a list of ``{code, message}``.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, serializers
from rest_framework.fields import get_error_detail
from rest_framework.response import Response
from rest_framework.views import set_rollback

from core.exceptions import ApplicationError, register_error

# The codes DRF itself raises, documented alongside the application's own.
for _code, _status, _message in (
    ("validation_error", 400, _("Some fields are invalid.")),
    ("parse_error", 400, _("Malformed request body.")),
    ("not_authenticated", 401, _("Authentication credentials were not provided.")),
    ("authentication_failed", 401, _("Incorrect authentication credentials.")),
    ("permission_denied", 403, _("You do not have permission to perform this action.")),
    ("not_found", 404, _("Not found.")),
    ("method_not_allowed", 405, _("Method not allowed.")),
    ("not_acceptable", 406, _("Could not satisfy the request Accept header.")),
    ("unsupported_media_type", 415, _("Unsupported media type in request.")),
    ("throttled", 429, _("Request was throttled.")),
    ("server_error", 500, _("Internal server error.")),
):
    register_error(_code, _status, _message)

FieldErrors = dict[str, list[dict[str, str]]]


def error_body(code: str, message: Any, fields: FieldErrors | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": str(message), "fields": fields or {}}}


def flatten_field_errors(detail: Any, prefix: str = "") -> FieldErrors:
    """Turn DRF's nested error detail into ``{"lines.0.price": [{"code", "message"}]}``."""
    if isinstance(detail, dict):
        result: FieldErrors = {}
        for key, value in detail.items():
            result.update(flatten_field_errors(value, f"{prefix}.{key}" if prefix else str(key)))
        return result
    if isinstance(detail, list):
        if all(isinstance(item, str) for item in detail):
            return {prefix or "non_field_errors": [_error_item(item) for item in detail]}
        result = {}
        for index, value in enumerate(detail):
            result.update(flatten_field_errors(value, f"{prefix}.{index}" if prefix else str(index)))
        return result
    return {prefix or "non_field_errors": [_error_item(detail)]}


def _error_item(detail: Any) -> dict[str, str]:
    return {"code": getattr(detail, "code", None) or "invalid", "message": str(detail)}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        set_rollback()
        body = error_body(exc.code, exc.message, exc.fields)
        body["error"].update(exc.extra)
        retry_after = exc.extra.get("retry_after")
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        return Response(body, status=exc.status_code, headers=headers)

    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(detail=get_error_detail(exc))

    if not isinstance(exc, exceptions.APIException):
        return None  # a genuine bug: Django's handler500 answers (in the same format) and logs it

    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    set_rollback()

    if isinstance(exc, exceptions.ValidationError):
        body = error_body("validation_error", _("Some fields are invalid."), flatten_field_errors(exc.detail))
    else:
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else exc.default_code
        body = error_body(code, exc.detail)
    return Response(body, status=exc.status_code, headers=headers)


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable error code.")
    message = serializers.CharField(help_text="Human-readable explanation (translated).")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.DictField(child=serializers.CharField())),
        help_text='Per-field errors: {"lines.0.price": [{"code": "invalid", "message": "…"}]}.',
    )


class ErrorSerializer(serializers.Serializer):
    """Body of every 4xx (and 5xx) answer."""

    error = ErrorDetailSerializer()
