"""The perks API: a customer's tier, perks and the next tier in one fast call (SPEC F-TIER-3, F-TIER-4)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.actors import Actor
from customers.tests.factories import B2bCustomerFactory, CustomerFactory
from integrations.scopes import Scope
from integrations.tests.factories import ChannelFactory
from programmes.selectors import customer_tier_status
from programmes.services import purchase_record, tier_assign_manual

pytestmark = pytest.mark.django_db


def url(customer_id: int) -> str:
    return f"/api/v1/customers/{customer_id}/tier"


def test_a_gold_customer_gets_tier_perks_and_what_is_needed_for_platinum(api, tiers):
    customer = CustomerFactory()
    purchase_record(
        customer=customer, amount="350000", occurred_at=timezone.now(), source_type="order", source_id="o-1"
    )

    response = api.get(url(customer.pk))

    assert response.status_code == 200
    body = response.json()
    assert body["since"] is not None
    del body["since"]
    assert body == {
        "customer_id": customer.pk,
        "programme": {"code": "retail", "name": "Retail programme"},
        "tier": {"code": "gold", "name": "Gold", "rank": 2},
        "manual": False,
        "manual_until": None,
        "earn_rate_percent": "10.00",
        "max_redemption_percent": "25.00",
        "qualifying_purchases": "350000.00",
        "perks": {
            "reservation_days_bonus": 1,
            "reservation_item_limit": 7,
            "early_access_hours": 48,
            "loan_limit_multiplier": "1.00",
            "extra": {},
        },
        "next_tier": {
            "code": "platinum",
            "name": "Platinum",
            "rank": 3,
            "qualification_threshold": "1000000.00",
            "purchases_needed": "650000.00",
        },
    }


@pytest.mark.smoke
def test_a_customer_without_purchases_is_in_the_entry_tier(api, tiers):
    customer = CustomerFactory()

    body = api.get(url(customer.pk)).json()

    assert (body["tier"]["code"], body["since"], body["manual"]) == ("basic", None, False)
    assert body["perks"]["reservation_item_limit"] == 5
    assert (body["next_tier"]["code"], body["next_tier"]["purchases_needed"]) == ("silver", "100000.00")


def test_a_manual_tier_shows_its_end_and_the_top_tier_has_no_next(api, tiers, django_user_model):
    customer = CustomerFactory()
    until = timezone.now().replace(microsecond=0) + timedelta(days=30)
    staff = Actor(user=django_user_model.objects.create_user(username="m", password="x"))
    tier_assign_manual(customer=customer, tier=tiers["platinum"], actor=staff, reason="VIP", until=until)

    body = api.get(url(customer.pk)).json()

    assert (body["tier"]["code"], body["manual"], body["next_tier"]) == ("platinum", True, None)
    assert body["manual_until"] == until.astimezone(timezone.get_current_timezone()).isoformat()


def test_a_b2b_customer_is_a_partner(api, tiers):
    body = api.get(url(B2bCustomerFactory().pk)).json()

    assert (body["programme"]["code"], body["tier"]["code"], body["next_tier"]) == ("b2b", "partner", None)


def test_the_answer_takes_a_bounded_number_of_queries(api, tiers, django_assert_max_num_queries):
    customer = CustomerFactory()
    for index in range(10):
        purchase_record(
            customer=customer, amount="50000", occurred_at=timezone.now(), source_type="order", source_id=str(index)
        )

    with CaptureQueriesContext(connection) as tier_queries:
        customer_tier_status(customer=customer)
    with django_assert_max_num_queries(6):  # key lookup, last-used touch, customer, tiers, tier row, sum
        response = api.get(url(customer.pk))

    assert len(tier_queries) == 3  # tiers, tier row, sum: whatever the purchase history
    assert response.json()["tier"]["code"] == "gold"


def test_an_unknown_customer_is_not_found(api, tiers):
    response = api.get(url(999999999))

    assert (response.status_code, response.json()["error"]["code"]) == (404, "customer_not_found")


def test_a_channel_without_customers_read_is_refused(channel_client, tiers):
    client = channel_client(ChannelFactory(scopes=[Scope.POINTS_READ]))

    response = client.get(url(CustomerFactory().pk))

    assert (response.status_code, response.json()["error"]["code"]) == (403, "missing_scope")
