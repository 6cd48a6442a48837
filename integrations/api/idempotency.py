"""``@idempotent`` for channel API handlers (SPEC F-INT-2).

Runs after authentication, scope and throttle checks (DRF's ``initial``), so a request that was
refused for those reasons never consumes its key. The first answer below 500 is stored as sent
and every retry gets the same status and bytes, marked with ``Idempotent-Replayed: true``.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse
from django.utils.encoding import escape_uri_path
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from integrations.authentication import request_channel
from integrations.exceptions import IdempotencyKeyInvalid, IdempotencyKeyRequired
from integrations.models import IdempotencyKey
from integrations.services.idempotency import (
    ClaimOutcome,
    idempotency_key_acquire,
    idempotency_key_complete,
    idempotency_key_release,
)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
PATH_MAX_LENGTH = IdempotencyKey._meta.get_field("path").max_length


def request_fingerprint(request: Request) -> str:
    """Same operation ⇔ same method, path, query and (parsed, key-order-insensitive) body."""
    payload = [request.method, request.path, sorted(request.query_params.lists()), request.data]
    return hashlib.sha256(json.dumps(payload, sort_keys=True, cls=DjangoJSONEncoder).encode()).hexdigest()


def _key_from(request: Request, *, required: bool) -> str | None:
    key = request.headers.get(HEADER)
    if key is None or key == "":
        if required:
            raise IdempotencyKeyRequired()
        return None
    if len(key) > 255 or not key.isascii() or not key.isprintable():
        raise IdempotencyKeyInvalid()
    return key


OPERATION_KEY_MAX_LENGTH = 200  # the ledgers' operation_key columns


def request_operation_key(request: Request) -> str:
    """The operation key a domain service records for this ``@idempotent()`` request (key required): one per
    channel and ``Idempotency-Key``, so an operation re-run after a stale claim is taken over happens once.

    Built from the channel's pk, which never changes (its code may be edited). A key too long for the
    column is replaced by its SHA-256, under another prefix so the two forms can never collide.
    """
    channel = request_channel(request)
    key = request.headers[HEADER]
    operation_key = f"api:{channel.pk}:{key}"
    if len(operation_key) <= OPERATION_KEY_MAX_LENGTH:
        return operation_key
    return f"api-sha256:{channel.pk}:{hashlib.sha256(key.encode()).hexdigest()}"


def _as_sent(response: Response) -> HttpResponse:
    body = b"" if response.data is None else JSONRenderer().render(response.data)
    sent = HttpResponse(body, status=response.status_code, content_type="application/json")
    for header, value in response.items():
        if header.lower() != "content-type":
            sent[header] = value
    return sent


def _replay(record: IdempotencyKey) -> HttpResponse:
    response = HttpResponse(record.response_body, status=record.response_status, content_type="application/json")
    response[REPLAYED_HEADER] = "true"
    return response


def idempotent(required: bool = True) -> Callable:
    def decorate(handler: Callable) -> Callable:
        @functools.wraps(handler)
        def wrapper(view: APIView, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:
            key = _key_from(request, required=required)
            if key is None:
                return handler(view, request, *args, **kwargs)
            claim = idempotency_key_acquire(
                channel=request_channel(request),
                key=key,
                method=request.method,
                # Escaped (a NUL, %00, cannot be stored as text) and cut to the column: the path is only shown
                # (the fingerprint tells requests apart), and a long non-ASCII one triples in length when escaped.
                path=escape_uri_path(request.path)[:PATH_MAX_LENGTH],
                fingerprint=request_fingerprint(request),
            )
            if claim.outcome is ClaimOutcome.REPLAY:
                return _replay(claim.record)
            try:
                response = handler(view, request, *args, **kwargs)
            except Exception as exc:
                try:
                    response = view.handle_exception(exc)  # ApplicationError → its 4xx, stored like any answer
                except Exception:
                    idempotency_key_release(record=claim.record)
                    raise
            if response.status_code >= 500:
                idempotency_key_release(record=claim.record)
                return response
            sent = _as_sent(response)
            idempotency_key_complete(record=claim.record, status=sent.status_code, body=sent.content.decode())
            return sent

        wrapper.idempotency_required = required
        return wrapper

    return decorate
