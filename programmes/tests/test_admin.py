"""Admin of programmes: pages render, customer search, the manual tier assignment (action and page)."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.utils import timezone

from customers.tests.factories import B2bCustomerFactory, CustomerFactory
from programmes.models import CustomerTier, TierChange
from programmes.services import purchase_record

pytestmark = pytest.mark.django_db

TIERS_URL = "/admin/programmes/customertier/"
ASSIGN_URL = "/admin/programmes/customertier/assign/"


def texts(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.fixture
def silver_customer(tiers):
    customer = CustomerFactory(phone="+79161234567")
    purchase_record(customer=customer, amount=150000, occurred_at=timezone.now(), source_type="order", source_id="1")
    return customer


def test_the_admin_pages_render(admin_client, retail, silver_customer):
    row = CustomerTier.objects.get(customer=silver_customer)
    change = TierChange.objects.filter(customer=silver_customer).first()
    pages = [
        "/admin/programmes/programme/",
        f"/admin/programmes/programme/{retail.pk}/change/",
        "/admin/programmes/programme/add/",
        TIERS_URL,
        f"{TIERS_URL}{row.pk}/change/",
        ASSIGN_URL,
        "/admin/programmes/tierchange/",
        f"/admin/programmes/tierchange/{change.pk}/change/",
        "/admin/programmes/purchaserecord/",
    ]

    statuses = {page: admin_client.get(page).status_code for page in pages}

    assert statuses == dict.fromkeys(pages, 200)
    assert "Platinum" in admin_client.get(f"/admin/programmes/programme/{retail.pk}/change/").content.decode()


@pytest.mark.parametrize("typed", ["8 916 123-45-67", "+79161234567", "{pk}", "#{pk}"])
def test_customer_tiers_are_found_by_phone_or_id(admin_client, silver_customer, typed):
    CustomerFactory()  # another customer, not found
    purchase_record(
        customer=CustomerFactory(), amount=1, occurred_at=timezone.now(), source_type="order", source_id="2"
    )

    response = admin_client.get(TIERS_URL, {"q": typed.format(pk=silver_customer.pk)})

    assert [row.customer_id for row in response.context["cl"].result_list] == [silver_customer.pk]


def test_the_action_assigns_a_tier_with_reason_and_last_day(admin_client, admin_user, tiers, silver_customer):
    row = CustomerTier.objects.get(customer=silver_customer)
    last_day = timezone.localdate() + timedelta(days=10)
    selected = {"action": "assign_tier_manually", "_selected_action": [row.pk]}

    confirmation = admin_client.post(TIERS_URL, selected)
    response = admin_client.post(
        TIERS_URL,
        {**selected, "confirmed": "yes", "tier": tiers["gold"].pk, "reason": "VIP", "last_day": last_day.isoformat()},
    )

    assert confirmation.status_code == 200
    assert "Assign a tier manually" in confirmation.content.decode()
    assert response.status_code == 302
    row.refresh_from_db()
    assert (row.tier, row.manual, timezone.localtime(row.manual_until).date()) == (
        tiers["gold"],
        True,
        last_day + timedelta(days=1),
    )
    change = TierChange.objects.get(customer=silver_customer, reason="manual")
    assert (change.note, change.actor_user, change.from_tier) == ("VIP", admin_user, tiers["silver"])
    assert texts(response) == [f"Tier Gold assigned to 1 customer: #{silver_customer.pk}."]


def test_the_action_without_reason_shows_the_form_again_and_changes_nothing(admin_client, tiers, silver_customer):
    row = CustomerTier.objects.get(customer=silver_customer)

    response = admin_client.post(
        TIERS_URL,
        {"action": "assign_tier_manually", "_selected_action": [row.pk], "confirmed": "yes", "tier": tiers["gold"].pk},
    )

    assert response.status_code == 200
    assert response.context["form"].errors == {"reason": ["This field is required."]}
    row.refresh_from_db()
    assert (row.tier, row.manual) == (tiers["silver"], False)


def test_the_page_assigns_a_tier_to_a_customer_without_a_tier_row(admin_client, tiers):
    customer = CustomerFactory()

    response = admin_client.post(ASSIGN_URL, {"customer": customer.pk, "tier": tiers["platinum"].pk, "reason": "CEO"})

    assert response.status_code == 302
    row = CustomerTier.objects.get(customer=customer)
    assert (row.tier, row.manual, row.manual_until) == (tiers["platinum"], True, None)


def test_the_page_reports_a_tier_of_another_programme(admin_client, tiers):
    customer = B2bCustomerFactory()

    response = admin_client.post(ASSIGN_URL, {"customer": customer.pk, "tier": tiers["gold"].pk, "reason": "x"})

    assert response.status_code == 200
    assert any("Not assigned" in text for text in texts(response))
    assert not CustomerTier.objects.filter(customer=customer).exists()


def test_staff_without_the_change_permission_cannot_assign(client, django_user_model, tiers):
    user = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_customertier"))
    client.force_login(user)

    assert client.get(TIERS_URL).status_code == 200
    assert client.get(ASSIGN_URL).status_code == 403
