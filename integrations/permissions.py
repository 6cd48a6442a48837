from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from integrations.authentication import ChannelPrincipal

if TYPE_CHECKING:
    from rest_framework.views import APIView


class HasChannelScope(BasePermission):
    """A channel request whose channel holds the scope the view names for this method.

    Views declare ``required_scopes = {"GET": Scope.X, "POST": Scope.Y}``; a method the view does
    not name is refused, so forgetting a declaration fails closed.
    """

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not isinstance(request.user, ChannelPrincipal):
            raise exceptions.NotAuthenticated()
        if not hasattr(view, request.method.lower()):
            return True  # the view does not do this method: let DRF answer 405
        required = getattr(view, "required_scopes", {}).get(request.method)
        if required is None or not request.user.channel.has_scope(required):
            raise exceptions.PermissionDenied(
                _("This channel lacks the scope %(scope)s.") % {"scope": required or request.method},
                code="missing_scope",
            )
        return True


class IsChannel(BasePermission):
    """Any authenticated channel, whatever its scopes (for endpoints about the caller itself)."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not isinstance(request.user, ChannelPrincipal):
            raise exceptions.NotAuthenticated()
        return True
