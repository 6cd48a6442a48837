"""Demo staff for ``make run``: one user per role, so each workplace can be tried with its own permissions."""

from __future__ import annotations

from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from complaints.models import ApologyBudget
from complaints.services import apology_budget_set
from core.actors import Actor
from core.roles import ANALYST, COMPLAINTS, CRM_MANAGER, SHOWROOM_STAFF, roles_sync
from integrations.models import Store
from staff.models import StoreMembership

DEMO_STAFF_PASSWORD = "demo"  # local demo only, like the demo superuser's
# username, role, the stores they work in (showroom staff only)
DEMO_STAFF = [
    ("manager", CRM_MANAGER, []),
    ("seller", SHOWROOM_STAFF, ["msk-khimki"]),
    ("complaints", COMPLAINTS, []),
    ("analyst", ANALYST, []),
]
# The complaints department's apology budget: per operator per day, per case (above: a manager approves).
DEMO_BUDGET = (Decimal("2000"), Decimal("500"))


def demo_staff_load(*, actor: Actor) -> list[str]:
    """Create the demo staff users, their stores and the complaints budget where missing; returns what it created."""
    created = []
    roles_sync()
    user_model = get_user_model()
    for username, role, store_codes in DEMO_STAFF:
        if user_model.objects.filter(username=username).exists():
            continue
        user = user_model.objects.create_user(username, f"{username}@example.com", DEMO_STAFF_PASSWORD, is_staff=True)
        user.groups.add(Group.objects.get(name=role))
        for store in Store.objects.filter(code__in=store_codes):
            StoreMembership.objects.create(user=user, store=store)
        created.append(f"staff user {username}")
    group = Group.objects.get(name=COMPLAINTS)
    if not ApologyBudget.objects.filter(group=group).exists():
        daily_limit, case_limit = DEMO_BUDGET
        apology_budget_set(
            actor=actor, group=group, daily_limit=daily_limit, case_limit=case_limit, reason="demo budget"
        )
        created.append("complaints budget")
    return created
