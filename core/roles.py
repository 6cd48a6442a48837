"""Staff roles (SPEC F-STAFF-1) as Django groups, kept in sync with this file after every migrate.

The permission sets are deliberately coarse for now; the staff-workplaces issue refines them.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps as django_apps
from django.contrib.auth.models import Group, Permission
from django.db.models import Q
from django.utils.translation import gettext_noop

DOMAIN_APPS = (
    "core",
    "integrations",
    "customers",
    "points",
    "catalog",
    "programmes",
    "orders",
    "campaigns",
    "reviews",
    "staff",
    "complaints",
)

CRM_MANAGER = gettext_noop("CRM manager")
SHOWROOM_STAFF = gettext_noop("Showroom staff")
COMPLAINTS = gettext_noop("Complaints department")
ANALYST = gettext_noop("Analyst")


def _role_permissions() -> dict[str, Q]:
    in_domain = Q(content_type__app_label__in=DOMAIN_APPS)
    view_only = Q(codename__startswith="view_")
    return {
        CRM_MANAGER: in_domain,
        SHOWROOM_STAFF: Q(content_type__app_label="customers", content_type__model="customer")
        & (view_only | Q(codename__startswith="add_") | Q(codename__startswith="change_")),
        COMPLAINTS: Q(content_type__app_label="customers", content_type__model="customer") & view_only,
        ANALYST: in_domain & view_only,
    }


def roles_sync() -> dict[str, int]:
    """Create the role groups and set their permissions exactly; safe to run any number of times."""
    counts = {}
    for name, permissions in _role_permissions().items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(Permission.objects.filter(permissions))
        counts[name] = group.permissions.count()
    return counts


def roles_sync_after_migrate(sender: Any, **kwargs: Any) -> None:
    # post_migrate fires once per app, after that app's permissions exist: sync on the last one.
    with_models = [config for config in django_apps.get_app_configs() if config.models_module is not None]
    if sender is with_models[-1]:
        roles_sync()
