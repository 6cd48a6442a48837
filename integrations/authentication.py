"""``Authorization: Bearer <key>`` → the request's channel (SPEC F-INT-1)."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from integrations.models import ApiKey, Channel
from integrations.selectors import api_key_get_by_raw
from integrations.services.channels import api_key_touch


@dataclass(frozen=True)
class ChannelPrincipal:
    """``request.user`` of a channel request: not a staff user, just the channel behind the key."""

    channel: Channel
    api_key: ApiKey
    is_authenticated = True
    is_anonymous = False
    is_staff = False
    pk = None

    def __str__(self) -> str:
        return f"channel:{self.channel.code}"


class ChannelKeyAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[ChannelPrincipal, ApiKey] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None  # → 401 not_authenticated
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(_("Unknown API key."), code="invalid_api_key")
        try:
            raw_key = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(_("Unknown API key."), code="invalid_api_key") from None

        api_key = api_key_get_by_raw(raw_key)
        if api_key is None:
            raise exceptions.AuthenticationFailed(_("Unknown API key."), code="invalid_api_key")
        if api_key.is_revoked:
            raise exceptions.AuthenticationFailed(_("This API key has been revoked."), code="api_key_revoked")
        if not api_key.channel.is_active:
            raise exceptions.AuthenticationFailed(_("This channel is deactivated."), code="channel_inactive")

        api_key_touch(api_key=api_key)
        request._request.channel = api_key.channel  # for the request log
        return ChannelPrincipal(channel=api_key.channel, api_key=api_key), api_key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


def request_channel(request: Request) -> Channel:
    return request.user.channel
