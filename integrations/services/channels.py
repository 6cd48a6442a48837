"""Channels and their API keys (SPEC F-INT-1)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from integrations.models import ApiKey, Channel
from integrations.scopes import ALL_SCOPES

API_KEY_PREFIX = "lcrm_"


def api_key_hash(raw_key: str) -> str:
    # Keys carry 256 bits of randomness, so a fast hash is enough (no brute force is possible).
    return hashlib.sha256(raw_key.encode()).hexdigest()


def channel_scopes_validate(scopes: list[str]) -> list[str]:
    unknown = sorted(set(scopes) - ALL_SCOPES)
    if unknown:
        raise ValidationError({"scopes": _("Unknown scopes: %(scopes)s") % {"scopes": ", ".join(unknown)}})
    return sorted(set(scopes))


def channel_create(*, code: str, name: str, kind: str, scopes: list[str], rate_limit: str = "") -> Channel:
    channel = Channel(code=code, name=name, kind=kind, scopes=channel_scopes_validate(scopes), rate_limit=rate_limit)
    channel.full_clean()
    channel.save()
    return channel


@dataclass(frozen=True)
class IssuedApiKey:
    api_key: ApiKey
    raw_key: str  # shown to the person who issued it, once; never stored


@transaction.atomic
def api_key_issue(
    *, channel: Channel, name: str, created_by: AbstractBaseUser | None = None, raw_key: str | None = None
) -> IssuedApiKey:
    """Create a key for ``channel``. ``raw_key`` is for demo data only; normally one is generated."""
    raw_key = raw_key or API_KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        channel=channel,
        name=name,
        prefix=raw_key[:12],
        key_hash=api_key_hash(raw_key),
        created_by=created_by,
    )
    return IssuedApiKey(api_key=api_key, raw_key=raw_key)


def api_key_revoke(*, api_key: ApiKey, revoked_by: AbstractBaseUser | None = None) -> ApiKey:
    """Revoke at once; revoking an already revoked key changes nothing (first revocation is kept)."""
    from integrations.selectors import api_keys_forget  # the selectors hash keys with this module

    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_by=revoked_by
    )
    api_keys_forget()  # this worker refuses the key at once; the others within API_KEY_CACHE_SECONDS
    api_key.refresh_from_db(fields=["revoked_at", "revoked_by"])
    return api_key


def api_key_touch(*, api_key: ApiKey) -> None:
    """Record use, at most once a minute per key, so authentication does not write on every request."""
    now = timezone.now()
    if api_key.last_used_at is None or (now - api_key.last_used_at).total_seconds() >= 60:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
