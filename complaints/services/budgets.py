"""Apology budgets, set by CRM managers; every change is audited (BUDGET_CHANGE)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils.translation import gettext as _

from complaints.exceptions import ApologyBudgetInvalid
from complaints.models import ApologyBudget
from core.actors import Actor
from points.models import ZERO
from points.services.journal import CENT
from staff.models import AuditRecord
from staff.services import audit_record


def _snapshot(budget: ApologyBudget | None) -> dict[str, Any]:
    if budget is None:
        return {}
    return {
        "group": budget.group_id,
        "user": budget.user_id,
        "daily_limit": budget.daily_limit,
        "case_limit": budget.case_limit,
    }


def apology_budget_set(
    *,
    actor: Actor,
    daily_limit: Decimal,
    case_limit: Decimal,
    budget: ApologyBudget | None = None,
    group: Group | None = None,
    user: AbstractBaseUser | None = None,
    reason: str = "",
) -> ApologyBudget:
    """Create a budget (``budget`` None) or change one: for exactly one of ``group`` / ``user``, limits of zero
    or more. ``ApologyBudgetInvalid`` otherwise. Audited with the limits before and after."""
    if (group is None) == (user is None):
        raise ApologyBudgetInvalid(_("A budget belongs to exactly one group or one user."))
    daily_limit, case_limit = Decimal(daily_limit).quantize(CENT), Decimal(case_limit).quantize(CENT)
    if daily_limit < ZERO or case_limit < ZERO:
        raise ApologyBudgetInvalid(_("The limits must be zero or more."))
    with transaction.atomic():
        if budget is None:
            before, budget = {}, ApologyBudget()
        else:
            budget = ApologyBudget.objects.select_for_update().get(pk=budget.pk)
            before = _snapshot(budget)
        budget.group, budget.user = group, user
        budget.daily_limit, budget.case_limit = daily_limit, case_limit
        budget.save()
        audit_record(
            actor=actor,
            action=AuditRecord.Action.BUDGET_CHANGE,
            target=budget,
            reason=reason,
            before=before,
            after=_snapshot(budget),
        )
    return budget


def apology_budget_delete(*, actor: Actor, budget: ApologyBudget, reason: str = "") -> None:
    """Remove a budget (its holders fall back to their groups' budget, or need approval for every grant)."""
    with transaction.atomic():
        locked = ApologyBudget.objects.select_for_update().filter(pk=budget.pk).first()
        if locked is None:
            return  # deleted already
        audit_record(
            actor=actor,
            action=AuditRecord.Action.BUDGET_CHANGE,
            target=locked,
            reason=reason,
            before=_snapshot(locked),
            after={},
        )
        locked.delete()
