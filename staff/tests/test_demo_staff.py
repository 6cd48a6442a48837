"""``make run``'s demo staff: one user per role, the seller in a store, the complaints department's budget."""

import pytest
from django.contrib.auth import get_user_model

from complaints.models import ApologyBudget
from core.demo import demo_data_load
from core.roles import ANALYST, COMPLAINTS, CRM_MANAGER, SHOWROOM_STAFF
from staff.demo import DEMO_STAFF_PASSWORD
from staff.services import staff_store_ids

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]


def test_each_role_has_a_demo_user_who_can_log_in_and_loading_twice_changes_nothing(client):
    demo_data_load()
    again = demo_data_load()

    users = {user.username: user for user in get_user_model().objects.filter(is_superuser=False)}
    roles = {name: [group.name for group in user.groups.all()] for name, user in users.items()}
    assert roles == {
        "manager": [CRM_MANAGER],
        "seller": [SHOWROOM_STAFF],
        "complaints": [COMPLAINTS],
        "analyst": [ANALYST],
    }
    assert not [item for item in again.created if item.startswith(("staff user", "complaints budget"))]
    assert list(users["seller"].store_memberships.values_list("store__code", flat=True)) == ["msk-khimki"]
    assert staff_store_ids(users["manager"]) is None
    assert ApologyBudget.objects.filter(group__name=COMPLAINTS).count() == 1
    assert client.login(username="seller", password=DEMO_STAFF_PASSWORD)
    assert client.get("/admin/till/").status_code == 200
