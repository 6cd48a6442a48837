import pytest
from django.contrib.auth.models import Group, Permission

from core.roles import ANALYST, COMPLAINTS, CRM_MANAGER, DOMAIN_APPS, ROLES, SHOWROOM_STAFF, roles_sync
from staff.tests.factories import roles_ready

pytestmark = pytest.mark.django_db


def granted(name: str) -> set[str]:
    """The role's permissions as "app_label.codename"."""
    return {
        f"{app_label}.{codename}"
        for app_label, codename in Group.objects.get(name=name).permissions.values_list(
            "content_type__app_label", "codename"
        )
    }


def domain_permissions() -> set[str]:
    return {
        f"{app_label}.{codename}"
        for app_label, codename in Permission.objects.filter(content_type__app_label__in=DOMAIN_APPS).values_list(
            "content_type__app_label", "codename"
        )
    }


AUDIT_WRITES = {"staff.add_auditrecord", "staff.change_auditrecord", "staff.delete_auditrecord"}


@pytest.fixture(autouse=True)
def _synced():
    roles_ready()


def test_migrate_creates_the_four_roles():
    assert set(Group.objects.filter(name__in=ROLES).values_list("name", flat=True)) == set(ROLES)


def test_the_crm_manager_holds_everything_in_the_domain_but_writing_the_audit_trail():
    assert granted(CRM_MANAGER) == domain_permissions() - AUDIT_WRITES
    assert {
        "points.adjust_points",
        "staff.view_all_stores",
        "staff.use_till",
        "staff.view_auditrecord",
        "customers.merge_customer",
        "programmes.change_earningrule",
        "programmes.change_customertier",
    } <= granted(CRM_MANAGER)


def test_showroom_staff_serve_customers_and_orders_of_their_stores():
    assert granted(SHOWROOM_STAFF) == {
        "customers.view_customer",
        "customers.add_customer",
        "customers.change_customer",
        "orders.view_order",
        "orders.change_order",  # the orders admin's deliver / cancel / return / attach actions
        "orders.view_orderline",
        "orders.view_payment",
        "orders.view_reservation",
        "staff.use_till",
    }


def test_the_complaints_department_issues_apologies_but_does_not_approve_them():
    expected = {
        "customers.view_customer",
        "orders.view_order",
        "orders.view_orderline",
        "points.view_lot",
        "points.view_entry",
        "staff.view_all_stores",
    }
    complaints = {
        "complaints.add_complaintcase",
        "complaints.change_complaintcase",
        "complaints.view_complaintcase",
        "complaints.add_apologygrant",
        "complaints.view_apologygrant",
        "complaints.issue_apology",
    }
    present = complaints & domain_permissions()  # the complaints desk's models may not exist yet

    assert granted(COMPLAINTS) == expected | present
    assert "complaints.approve_apology" not in granted(COMPLAINTS)
    assert "points.adjust_points" not in granted(COMPLAINTS)


def test_the_analyst_only_views_everything():
    views = {name for name in domain_permissions() if name.split(".")[1].startswith("view_")}

    assert granted(ANALYST) == views | {"staff.view_all_stores"}
    assert "staff.view_auditrecord" in granted(ANALYST)


def test_sync_is_idempotent_and_restores_drifted_permissions():
    analyst = Group.objects.get(name=ANALYST)
    expected = granted(ANALYST)
    analyst.permissions.clear()
    Group.objects.get(name=SHOWROOM_STAFF).permissions.add(Permission.objects.get(codename="adjust_points"))

    first = roles_sync()
    second = roles_sync()

    assert first == second
    assert granted(ANALYST) == expected
    assert "points.adjust_points" not in granted(SHOWROOM_STAFF)
    assert first[SHOWROOM_STAFF] == len(granted(SHOWROOM_STAFF))


def test_the_migration_syncs_with_the_historical_models():
    """The staff migration runs ``roles_sync`` against the registry of its moment, before post_migrate."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    Group.objects.filter(name__in=ROLES).delete()
    state = MigrationExecutor(connection).loader.project_state(("staff", "0003_staff_roles"))

    roles_sync(apps=state.apps)

    assert "customers.view_customer" in granted(SHOWROOM_STAFF)
    assert "points.adjust_points" in granted(CRM_MANAGER)
