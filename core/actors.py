"""Who asked for a change: a channel (API), a staff user (admin), or nobody (a scheduled job)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser

    from integrations.models import Channel


@dataclass(frozen=True)
class Actor:
    channel: Channel | None = None
    user: AbstractBaseUser | None = None

    @property
    def is_known(self) -> bool:
        return self.channel is not None or self.user is not None


SYSTEM = Actor()
