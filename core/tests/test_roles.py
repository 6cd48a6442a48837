import pytest
from django.contrib.auth.models import Group

from core.roles import ANALYST, COMPLAINTS, CRM_MANAGER, SHOWROOM_STAFF, roles_sync


def codenames(name: str) -> set[str]:
    return set(Group.objects.get(name=name).permissions.values_list("codename", flat=True))


@pytest.mark.django_db
def test_migrate_creates_the_staff_roles():
    assert set(Group.objects.values_list("name", flat=True)) >= {CRM_MANAGER, SHOWROOM_STAFF, COMPLAINTS, ANALYST}
    assert {"add_channel", "change_apikey", "view_customer"} <= codenames(CRM_MANAGER)
    assert {"view_customer", "add_customer", "change_customer"} == codenames(SHOWROOM_STAFF)


@pytest.mark.django_db
def test_analyst_can_only_view():
    assert codenames(ANALYST)
    assert all(codename.startswith("view_") for codename in codenames(ANALYST))


@pytest.mark.django_db
def test_sync_is_idempotent_and_restores_drifted_permissions():
    Group.objects.get(name=ANALYST).permissions.clear()

    first = roles_sync()
    second = roles_sync()

    assert first == second
    assert codenames(ANALYST)
