"""Fixtures of the complaints desk tests: staff users with exactly the permissions their role needs, budgets."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission

from complaints.models import ApologyBudget
from complaints.services import apology_lifetimes_ensure
from complaints.tests.factories import ComplaintCaseFactory
from core.actors import Actor
from points.services.lifetimes import balance_types_ensure_defaults

OPERATOR_PERMISSIONS = (
    "complaints.issue_apology",
    "complaints.add_complaintcase",
    "complaints.change_complaintcase",
    "complaints.view_complaintcase",
    "complaints.view_apologygrant",
    "customers.view_customer",
    "staff.view_all_stores",
)
MANAGER_PERMISSIONS = (
    *OPERATOR_PERMISSIONS,
    "complaints.approve_apology",
    "complaints.add_apologybudget",
    "complaints.change_apologybudget",
    "complaints.delete_apologybudget",
    "complaints.view_apologybudget",
)


def permissions(*names: str) -> list[Permission]:
    found = []
    for name in names:
        app_label, codename = name.split(".")
        found.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return found


@pytest.fixture(autouse=True)
def _ledger_setup(request):
    # Transactional tests flush what the migrations created: the balance types and their apology lifetime.
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        return
    transactional = bool(marker.kwargs.get("transaction") or (marker.args and marker.args[0]))
    request.getfixturevalue("transactional_db" if transactional else "db")
    balance_types_ensure_defaults()
    apology_lifetimes_ensure()


@pytest.fixture
def make_staff(django_user_model):
    """``make_staff(username, *permission names)`` → an active staff user holding exactly those permissions."""

    def make(username: str, *names: str, password: str = "s3cret-pass"):
        user = django_user_model.objects.create_user(username, password=password, is_staff=True)
        user.user_permissions.set(permissions(*names))
        return django_user_model.objects.get(pk=user.pk)  # a fresh object: no stale permission cache

    return make


@pytest.fixture
def operator_user(make_staff):
    return make_staff("operator", *OPERATOR_PERMISSIONS)


@pytest.fixture
def operator(operator_user) -> Actor:
    return Actor(user=operator_user)


@pytest.fixture
def manager_user(make_staff):
    return make_staff("crm-manager", *MANAGER_PERMISSIONS)


@pytest.fixture
def manager(manager_user) -> Actor:
    return Actor(user=manager_user)


@pytest.fixture
def budget(operator_user) -> ApologyBudget:
    """The operator's own budget: 500 points a day, 300 per case."""
    return ApologyBudget.objects.create(user=operator_user, daily_limit=Decimal(500), case_limit=Decimal(300))


@pytest.fixture
def group_budget():
    """``group_budget(user, daily, case)`` → a budget of a new group the user is put in."""
    made = iter(range(1, 100))

    def make(user, daily, case) -> ApologyBudget:
        group = Group.objects.create(name=f"Complaints team {next(made)}")
        user.groups.add(group)
        return ApologyBudget.objects.create(group=group, daily_limit=Decimal(daily), case_limit=Decimal(case))

    return make


@pytest.fixture
def case(db):
    return ComplaintCaseFactory()
