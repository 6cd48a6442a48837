"""Store scoping of staff users (F-STAFF-1): showroom staff see their own stores' customers and orders only."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser

from staff.models import StoreMembership

ALL_STORES = None


def staff_store_ids(user: AbstractBaseUser) -> set[int] | None:
    """The stores a user is confined to, or ``None`` (ALL_STORES) for a user who sees every store: superusers and
    anyone holding ``staff.view_all_stores`` (CRM managers, complaints, analysts)."""
    if user.is_superuser or user.has_perm("staff.view_all_stores"):
        return ALL_STORES
    cache = getattr(user, "_staff_store_ids", None)
    if cache is None:
        cache = set(StoreMembership.objects.filter(user=user).values_list("store_id", flat=True))
        user._staff_store_ids = cache
    return cache
