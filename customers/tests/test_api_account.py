"""Consents, merge and the personal account through the channel API (SPEC F-ID-5, F-ID-7, personal account)."""

import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from core.actors import Actor
from customers.models import ConsentEvent, Customer
from customers.services import consent_set, customer_anonymise, customer_join, customer_merge
from customers.tests.factories import B2bCustomerFactory, CustomerFactory, NonMemberFactory, StoreFactory
from integrations.tests.factories import ChannelFactory
from points.models import Account, Entry, Hold
from points.services import points_accrue, points_hold, points_reconcile, points_redeem

pytestmark = pytest.mark.django_db


def post(client, url, body=None, *, key=None):
    return client.post(url, body or {}, format="json", HTTP_IDEMPOTENCY_KEY=key or str(uuid.uuid4()))


def error(response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def accrue(customer, amount, **kwargs):
    return points_accrue(
        customer=customer, amount=amount, kind=kwargs.pop("kind", "purchase"), operation_key=str(uuid.uuid4()), **kwargs
    )


def available(customer) -> str:
    account = Account.objects.filter(customer=customer, balance_type__code="retail").first()
    return f"{account.available:.2f}" if account else "0.00"


def merge_url(survivor) -> str:
    return f"/api/v1/customers/{survivor.pk}/merge"


# --- consents --------------------------------------------------------------------------------


@pytest.mark.smoke
def test_consents_of_a_customer_never_asked_are_all_null(api, customer):
    response = api.get(f"/api/v1/customers/{customer.pk}/consents")

    assert response.status_code == 200
    assert response.json() == {
        "consents": [
            {"channel": channel, "granted": None, "source": None, "text_version": None, "changed_at": None}
            for channel in ("sms", "email", "push", "phone_call")
        ],
        "history": [],
    }


def test_consent_change_is_recorded_with_the_channel_and_kept_in_history(api, channel, customer):
    granted = post(api, f"/api/v1/customers/{customer.pk}/consents", {"channel": "sms", "granted": True})
    revoked = post(
        api, f"/api/v1/customers/{customer.pk}/consents", {"channel": "sms", "granted": False, "text_version": "v2"}
    )

    sms_now = {row["channel"]: row for row in revoked.json()["consents"]}["sms"]
    assert (granted.status_code, revoked.status_code) == (200, 200)
    assert {row["channel"]: row["granted"] for row in granted.json()["consents"]}["sms"] is True
    assert (sms_now["granted"], sms_now["source"], sms_now["text_version"]) == (False, "api", "v2")
    history = api.get(f"/api/v1/customers/{customer.pk}/consents").json()["history"]
    assert [
        (row["granted"], row["text_version"], row["source"], row["by_channel"], row["by_user"]) for row in history
    ] == [
        (False, "v2", "api", channel.code, None),
        (True, settings.CONSENT_TEXT_VERSION, "api", channel.code, None),
    ]


def test_consent_history_names_the_staff_user_and_keeps_the_latest_hundred(api, customer):
    manager = get_user_model().objects.create(username="manager")
    now = timezone.now()
    for minute in range(101):
        consent_set(
            customer=customer,
            channel="email",
            granted=minute % 2 == 0,
            source=ConsentEvent.Source.ADMIN,
            actor=Actor(user=manager),
            now=now + timedelta(minutes=minute),
        )

    history = api.get(f"/api/v1/customers/{customer.pk}/consents").json()["history"]

    assert len(history) == 100
    assert (history[0]["granted"], history[0]["by_user"], history[0]["by_channel"]) == (True, "manager", None)


def test_repeating_the_current_consent_records_nothing(api, customer):
    for _ in range(2):
        post(api, f"/api/v1/customers/{customer.pk}/consents", {"channel": "push", "granted": True})

    assert ConsentEvent.objects.filter(customer=customer).count() == 1


def test_consents_of_an_unknown_customer_are_404(api):
    assert error(api.get("/api/v1/customers/999999/consents")) == (404, "customer_not_found")
    assert error(post(api, "/api/v1/customers/999999/consents", {"channel": "sms", "granted": True})) == (
        404,
        "customer_not_found",
    )


def test_consent_change_of_a_merged_customer_is_409(api, channel):
    survivor, duplicate = CustomerFactory(), CustomerFactory()
    customer_merge(duplicate=duplicate, survivor=survivor, actor=Actor(channel=channel), reason="same person")

    response = post(api, f"/api/v1/customers/{duplicate.pk}/consents", {"channel": "sms", "granted": True})

    assert error(response) == (409, "customer_merged")
    assert not ConsentEvent.objects.exists()


def test_consent_grant_for_an_anonymised_customer_is_409(api, channel, customer):
    customer_anonymise(customer=customer, actor=Actor(channel=channel), reason="GDPR request")

    response = post(api, f"/api/v1/customers/{customer.pk}/consents", {"channel": "sms", "granted": True})

    assert error(response) == (409, "customer_anonymised")
    assert not ConsentEvent.objects.filter(granted=True).exists()


def test_an_unknown_consent_channel_is_a_field_error(api, customer):
    response = post(api, f"/api/v1/customers/{customer.pk}/consents", {"channel": "pigeon", "granted": True})

    assert error(response) == (400, "validation_error")
    assert list(response.json()["error"]["fields"]) == ["channel"]


# --- merge -----------------------------------------------------------------------------------


def test_merge_moves_the_points_through_the_ledger_and_leaves_a_redirect(api, channel):
    survivor = CustomerFactory(phone="+79031112233")
    duplicate = CustomerFactory(phone="+79161234567")
    accrue(survivor, 100)
    accrue(duplicate, 300)
    points_redeem(customer=duplicate, amount=50, operation_key="test:redeem:1")

    response = post(api, merge_url(survivor), {"duplicate_id": duplicate.pk, "reason": "same person, two phones"})

    assert response.status_code == 200
    assert response.json()["id"] == survivor.pk
    assert (available(survivor), available(duplicate)) == ("350.00", "0.00")
    assert set(Entry.objects.filter(kind__in=["move_out", "move_in"]).values_list("kind", "account__customer")) == {
        ("move_out", duplicate.pk),
        ("move_in", survivor.pk),
    }
    assert points_reconcile() == []
    assert api.get(f"/api/v1/customers/{duplicate.pk}").json()["merged_into"] == survivor.pk
    found = api.get("/api/v1/customers/identify", {"phone": "8 916 123-45-67"}).json()
    assert (found["customer"]["id"], found["redirected_from"], found["balance"]["available"]) == (
        survivor.pk,
        duplicate.pk,
        "350.00",
    )


def test_merging_the_same_pair_again_changes_nothing(api):
    survivor, duplicate = CustomerFactory(), CustomerFactory()
    accrue(duplicate, 300)
    post(api, merge_url(survivor), {"duplicate_id": duplicate.pk, "reason": "same person"})
    entries = Entry.objects.count()

    again = post(api, merge_url(survivor), {"duplicate_id": duplicate.pk, "reason": "same person"})

    assert again.status_code == 200
    assert Entry.objects.count() == entries
    assert available(survivor) == "300.00"


def test_a_channel_without_the_merge_scope_gets_403_and_nothing_moves(channel_client):
    writer = channel_client(ChannelFactory(scopes=["customers:read", "customers:write"]))
    survivor, duplicate = CustomerFactory(), CustomerFactory()
    accrue(duplicate, 300)

    response = post(writer, merge_url(survivor), {"duplicate_id": duplicate.pk, "reason": "same person"})

    assert error(response) == (403, "missing_scope")
    duplicate.refresh_from_db()
    assert (duplicate.merged_into_id, available(duplicate), available(survivor)) == (None, "300.00", "0.00")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"reason": ""}, (400, "reason_required")),
        ({"duplicate_id": "survivor", "reason": "typo"}, (400, "merge_into_self")),
        ({"duplicate_id": 999999, "reason": "typo"}, (404, "customer_not_found")),
    ],
)
def test_merge_refusals(api, body, expected):
    survivor, duplicate = CustomerFactory(), CustomerFactory()
    body = {"duplicate_id": duplicate.pk, **body}
    if body["duplicate_id"] == "survivor":
        body["duplicate_id"] = survivor.pk

    response = post(api, merge_url(survivor), body)

    assert error(response) == expected
    assert not Customer.objects.filter(merged_into__isnull=False).exists()


def test_merge_into_an_unknown_customer_is_404(api, customer):
    response = post(api, "/api/v1/customers/999999/merge", {"duplicate_id": customer.pk, "reason": "typo"})

    assert error(response) == (404, "customer_not_found")


def test_merging_an_already_merged_duplicate_is_409(api, channel):
    first, second, duplicate = CustomerFactory(), CustomerFactory(), CustomerFactory()
    customer_merge(duplicate=duplicate, survivor=first, actor=Actor(channel=channel), reason="same person")

    response = post(api, merge_url(second), {"duplicate_id": duplicate.pk, "reason": "same person"})

    assert error(response) == (409, "customer_merged")
    assert response.json()["error"]["merged_into"] == first.pk


def test_merge_with_points_held_at_a_checkout_is_409(api):
    survivor, duplicate = CustomerFactory(), CustomerFactory()
    accrue(duplicate, 300)
    points_hold(customer=duplicate, amount=100, operation_key="test:hold:1")

    response = post(api, merge_url(survivor), {"duplicate_id": duplicate.pk, "reason": "same person"})

    assert error(response) == (409, "holds_open")
    assert Hold.objects.get().account.customer_id == duplicate.pk
    assert available(duplicate) == "200.00"


# --- personal account ------------------------------------------------------------------------


def test_account_shows_profile_tier_balance_and_consents(api, channel):
    customer = NonMemberFactory(registration_store=StoreFactory(code="msk-1"))
    customer_join(customer=customer, actor=Actor(channel=channel))
    accrue(customer, 40, expires_at=timezone.now() + timedelta(days=3))
    accrue(customer, 10, pending=True)
    consent_set(customer=customer, channel="push", granted=True, source="api", actor=Actor(channel=channel))

    response = api.get(f"/api/v1/customers/{customer.pk}/account")

    body = response.json()
    assert response.status_code == 200
    assert set(body) == {"profile", "tier", "balance", "consents"}
    assert (body["profile"]["id"], body["profile"]["membership"], body["tier"]) == (customer.pk, "member", "basic")
    assert body["balance"] == {
        "balance_type": "retail",
        "available": f"{settings.LOYALTY_WELCOME_BONUS_POINTS + 40}.00",
        "pending": "10.00",
        "held": "0.00",
        "debt": "0.00",
        "expiring_soon": "40.00",
        "expiring_within_days": 30,
    }
    assert [(row["channel"], row["granted"]) for row in body["consents"]] == [
        ("sms", None),
        ("email", None),
        ("push", True),
        ("phone_call", None),
    ]


def test_account_of_a_b2b_customer_shows_the_b2b_balance(api):
    customer = B2bCustomerFactory()
    accrue(customer, 70, balance_type="b2b")

    balance = api.get(f"/api/v1/customers/{customer.pk}/account").json()["balance"]

    assert (balance["balance_type"], balance["available"]) == ("b2b", "70.00")


def test_account_of_a_merged_customer_is_409_naming_the_survivor(api, channel):
    survivor, duplicate = CustomerFactory(), CustomerFactory()
    customer_merge(duplicate=duplicate, survivor=survivor, actor=Actor(channel=channel), reason="same person")

    response = api.get(f"/api/v1/customers/{duplicate.pk}/account")

    assert error(response) == (409, "customer_merged")
    assert response.json()["error"]["merged_into"] == survivor.pk


def test_account_of_an_unknown_customer_is_404(api):
    assert error(api.get("/api/v1/customers/999999/account")) == (404, "customer_not_found")


def test_account_runs_in_a_bounded_number_of_queries(api, channel, django_assert_max_num_queries):
    customer = CustomerFactory(registration_store=StoreFactory())
    for number in range(10):
        accrue(customer, 10, expires_at=timezone.now() + timedelta(days=5 + number))
    for consent_channel in ("sms", "email", "push"):
        consent_set(
            customer=customer, channel=consent_channel, granted=True, source="api", actor=Actor(channel=channel)
        )

    # key lookup, last-used touch, customer, external ids, account, expiring sum, consents,
    # tier code (the customer's row, else the entry tier)
    with django_assert_max_num_queries(9):
        response = api.get(f"/api/v1/customers/{customer.pk}/account")

    assert response.json()["balance"]["expiring_soon"] == "100.00"


def test_a_channel_without_the_read_scope_cannot_read_the_account(channel_client, customer):
    writer = channel_client(ChannelFactory(scopes=["customers:write"]))

    assert error(writer.get(f"/api/v1/customers/{customer.pk}/account")) == (403, "missing_scope")


# --- points history with the source of each line ---------------------------------------------


def test_history_lines_name_the_source_their_points_came_from(api, channel):
    customer = NonMemberFactory()
    accrue(customer, 300, source_type="order_line", source_id="1042-1")
    customer_join(customer=customer, actor=Actor(channel=channel))
    points_redeem(customer=customer, amount=100, operation_key="test:redeem:order")

    results = api.get(f"/api/v1/customers/{customer.pk}/points/history").json()["results"]

    assert [(row["kind"], row["source_type"], row["source_id"]) for row in results] == [
        ("redeem", "order_line", "1042-1"),  # the welcome bonus is only for a first order
        ("accrue", "customer", str(customer.pk)),
        ("unrestrict", "order_line", "1042-1"),
        ("accrue", "order_line", "1042-1"),
    ]


def test_history_sources_cost_no_query_per_line(api, django_assert_max_num_queries):
    customer = CustomerFactory()
    for number in range(30):
        accrue(customer, 10, source_type="order_line", source_id=str(number))

    # key lookup, last-used touch, balance type, customer, count, page, allocations with their lots
    with django_assert_max_num_queries(7):
        response = api.get(f"/api/v1/customers/{customer.pk}/points/history", {"page_size": 100})

    results = response.json()["results"]
    assert len(results) == 30
    assert [row["source_id"] for row in results] == [str(number) for number in reversed(range(30))]
