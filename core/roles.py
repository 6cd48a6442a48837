"""Staff roles (SPEC F-STAFF-1) as Django groups with exact permissions, kept in step with this file.

The groups are created by a migration (``staff/migrations/0003_staff_roles``) and re-synced after every
``migrate`` (``roles_sync_after_migrate``), so permissions of models added later (the complaints desk) join their
roles without a migration of their own. Permissions are named by app label and codename, never looked up one by
one: a codename whose model does not exist yet simply matches nothing until it does.

- **CRM manager**: everything in the domain apps, except writing the audit trail (nobody may).
- **Showroom staff**: find, register and edit customers (no delete, no block, merge or anonymise), see orders,
  their lines and payments and reservations, and act on orders (deliver, cancel, return, attach a customer: the
  orders admin's actions need ``orders.change_order``); the till screen. No manual points adjustment, no programme
  (rules, tiers) changes, and only the stores they work in (``staff.StoreMembership``): they lack
  ``staff.view_all_stores``.
- **Complaints department**: find customers and look at their orders, lots and journal in every store; complaint
  cases (add, change, view) and apology grants (add, view, ``complaints.issue_apology``). Approving a grant over
  the budget (``complaints.approve_apology``) is the CRM manager's.
- **Analyst**: every ``view_*`` in the domain apps, every store, the audit trail; nothing else.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps as django_apps
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
ROLES = (CRM_MANAGER, SHOWROOM_STAFF, COMPLAINTS, ANALYST)


def _perms(app_label: str, *codenames: str) -> Q:
    return Q(content_type__app_label=app_label, codename__in=codenames)


# The audit trail is append-only: no role may add, change or delete its rows (the admin refuses anyway).
AUDIT_WRITES = _perms("staff", "add_auditrecord", "change_auditrecord", "delete_auditrecord")


def role_permissions() -> dict[str, Q]:
    """Each role's permissions as a filter on ``auth.Permission``."""
    in_domain = Q(content_type__app_label__in=DOMAIN_APPS)
    return {
        CRM_MANAGER: in_domain & ~AUDIT_WRITES,
        SHOWROOM_STAFF: _perms("customers", "view_customer", "add_customer", "change_customer")
        | _perms("orders", "view_order", "change_order", "view_orderline", "view_payment", "view_reservation")
        | _perms("staff", "use_till"),
        COMPLAINTS: _perms("customers", "view_customer")
        | _perms("orders", "view_order", "view_orderline")
        | _perms("points", "view_lot", "view_entry")
        | _perms("staff", "view_all_stores")
        | _perms("complaints", "add_complaintcase", "change_complaintcase", "view_complaintcase")
        | _perms("complaints", "add_apologygrant", "view_apologygrant", "issue_apology"),
        ANALYST: (in_domain & Q(codename__startswith="view_")) | _perms("staff", "view_all_stores"),
    }


def roles_sync(*, apps: Any = django_apps) -> dict[str, int]:
    """Create the role groups and set their permissions exactly (what drifted by hand is put back); safe to run any
    number of times. ``apps``: a migration's historical registry, or the live one. Returns each role's count."""
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    counts = {}
    for name, permissions in role_permissions().items():
        group, _ = group_model.objects.get_or_create(name=name)
        wanted = list(permission_model.objects.filter(permissions).values_list("pk", flat=True))
        group.permissions.set(wanted)
        counts[name] = len(wanted)
    return counts


def roles_sync_after_migrate(sender: Any, **kwargs: Any) -> None:
    # post_migrate fires once per app, after that app's permissions exist: sync on the last one.
    with_models = [config for config in django_apps.get_app_configs() if config.models_module is not None]
    if sender is with_models[-1]:
        roles_sync()
