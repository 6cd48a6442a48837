"""Channel API of customers: create non-members, profile, update, list filters, identify (SPEC F-ID-1, F-ID-4)."""

import uuid
from datetime import date, timedelta

import pytest
from django.utils import timezone

from core.actors import Actor
from customers.models import Customer, CustomerChange
from customers.services import customer_anonymise, customer_merge
from customers.tests.factories import (
    B2bCustomerFactory,
    CustomerFactory,
    ExternalIdFactory,
    NonMemberFactory,
    StoreFactory,
)
from integrations.tests.factories import ChannelFactory
from points.services import points_accrue

pytestmark = pytest.mark.django_db

PROFILE_FIELDS = {
    "id",
    "phone",
    "email",
    "email_validated",
    "email_validated_at",
    "name",
    "birth_date",
    "gender",
    "card_number",
    "kind",
    "company",
    "b2b_role",
    "language",
    "membership",
    "joined_at",
    "join_channel",
    "registration_store",
    "merged_into",
    "external_ids",
    "created_at",
}


def post(client, url, body=None, *, key=None):
    return client.post(url, body or {}, format="json", HTTP_IDEMPOTENCY_KEY=key or str(uuid.uuid4()))


def patch(client, url, body, *, key=None):
    return client.patch(url, body, format="json", HTTP_IDEMPOTENCY_KEY=key or str(uuid.uuid4()))


def error(response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def identify(client, **query):
    return client.get("/api/v1/customers/identify", query)


def channel_actor(channel) -> Actor:
    return Actor(channel=channel)


# --- create ----------------------------------------------------------------------------------


@pytest.mark.smoke
def test_channel_records_a_receipt_phone_as_a_non_member(api):
    response = api.post(
        "/api/v1/customers", {"phone": "8 (916) 123-45-67", "name": "Anna"}, format="json", HTTP_IDEMPOTENCY_KEY="r1"
    )

    body = response.json()
    assert response.status_code == 201
    assert (body["phone"], body["name"], body["membership"], body["joined_at"]) == (
        "+79161234567",
        "Anna",
        "non_member",
        None,
    )
    assert set(body) == PROFILE_FIELDS
    assert Customer.objects.get(pk=body["id"]).membership == Customer.Membership.NON_MEMBER


def test_create_records_every_field_the_store_and_the_channels_external_id(api, channel):
    store = StoreFactory(code="msk-1")

    response = post(
        api,
        "/api/v1/customers",
        {
            "phone": "+7 916 1234567",
            "name": "Anna Petrova",
            "email": "Anna@Example.com",
            "birth_date": "1990-05-17",
            "gender": "female",
            "card_number": "CARD-1",
            "kind": "b2b",
            "company": "Interiors LLC",
            "b2b_role": "designer",
            "language": "en",
            "store": "msk-1",
            "external_id": "u-42",
        },
    )

    customer = Customer.objects.get()
    body = response.json()
    assert response.status_code == 201
    assert body == {
        "id": customer.pk,
        "phone": "+79161234567",
        "email": "anna@example.com",
        "email_validated": False,
        "email_validated_at": None,
        "name": "Anna Petrova",
        "birth_date": "1990-05-17",
        "gender": "female",
        "card_number": "CARD-1",
        "kind": "b2b",
        "company": "Interiors LLC",
        "b2b_role": "designer",
        "language": "en",
        "membership": "non_member",
        "joined_at": None,
        "join_channel": channel.code,
        "registration_store": "msk-1",
        "merged_into": None,
        "external_ids": [{"channel": channel.code, "external_id": "u-42"}],
        "created_at": body["created_at"],
    }
    assert customer.registration_store == store
    assert CustomerChange.objects.get(customer=customer).actor_channel == channel


@pytest.mark.smoke
def test_create_with_an_unknown_store_is_a_field_error_and_creates_nothing(api):
    response = post(api, "/api/v1/customers", {"phone": "89161234567", "store": "nowhere"})

    assert error(response) == (400, "validation_error")
    assert response.json()["error"]["fields"]["store"][0]["code"] == "unknown_store"
    assert not Customer.objects.exists()


def test_create_with_an_invalid_phone_is_a_field_error(api):
    response = post(api, "/api/v1/customers", {"phone": "12345"})

    assert error(response) == (400, "validation_error")
    assert response.json()["error"]["fields"]["phone"][0]["code"] == "invalid"
    assert not Customer.objects.exists()


def test_create_with_a_role_for_a_retail_customer_names_the_field(api):
    response = post(api, "/api/v1/customers", {"phone": "89161234567", "b2b_role": "designer"})

    assert error(response) == (400, "invalid_customer_data")
    assert list(response.json()["error"]["fields"]) == ["b2b_role"]
    assert not Customer.objects.exists()


def test_second_customer_with_the_same_phone_is_409_naming_the_existing_one(api, customer):
    response = api.post("/api/v1/customers", {"phone": str(customer.phone)}, format="json", HTTP_IDEMPOTENCY_KEY="r2")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "customer_exists"
    assert response.json()["error"]["customer_id"] == customer.pk
    assert Customer.objects.count() == 1


def test_taken_card_and_taken_external_id_are_409(api, channel):
    CustomerFactory(card_number="CARD-1")
    ExternalIdFactory(channel=channel, external_id="u-42")

    card = post(api, "/api/v1/customers", {"phone": "89161110000", "card_number": "CARD-1"})
    external = post(api, "/api/v1/customers", {"phone": "89162220000", "external_id": "u-42"})

    assert error(card) == (409, "card_number_taken")
    assert error(external) == (409, "external_id_taken")
    assert Customer.objects.count() == 2


def test_the_same_idempotency_key_twice_creates_one_customer_and_answers_the_same(api):
    body = {"phone": "8 (916) 123-45-67", "name": "Anna"}

    first = post(api, "/api/v1/customers", body, key="receipt-77")
    second = post(api, "/api/v1/customers", body, key="receipt-77")

    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Customer.objects.count() == 1


def test_a_channel_without_the_write_scope_cannot_create(channel_client):
    reader = channel_client(ChannelFactory(scopes=["customers:read"]))

    response = post(reader, "/api/v1/customers", {"phone": "89161234567"})

    assert error(response) == (403, "missing_scope")
    assert not Customer.objects.exists()


# --- profile ---------------------------------------------------------------------------------


def test_detail_and_not_found(api, customer):
    found = api.get(f"/api/v1/customers/{customer.pk}")
    missing = api.get(f"/api/v1/customers/{customer.pk + 1000}")

    assert found.json()["id"] == customer.pk
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "customer_not_found"


def test_profile_lists_external_ids_of_every_channel_in_bounded_queries(api, django_assert_max_num_queries):
    customer = CustomerFactory(registration_store=StoreFactory(code="msk-1"))
    for code in ("erp", "app", "site"):
        ExternalIdFactory(customer=customer, channel=ChannelFactory(code=code), external_id=f"{code}-1")

    # key lookup, last-used touch, customer with channel and store, external ids with their channels
    with django_assert_max_num_queries(4):
        response = api.get(f"/api/v1/customers/{customer.pk}")

    assert response.json()["external_ids"] == [
        {"channel": "app", "external_id": "app-1"},
        {"channel": "erp", "external_id": "erp-1"},
        {"channel": "site", "external_id": "site-1"},
    ]
    assert response.json()["registration_store"] == "msk-1"


def test_a_merged_duplicate_shows_where_it_went(api, channel):
    survivor, duplicate = CustomerFactory(), CustomerFactory()
    customer_merge(duplicate=duplicate, survivor=survivor, actor=channel_actor(channel), reason="same person")

    response = api.get(f"/api/v1/customers/{duplicate.pk}")

    assert (response.status_code, response.json()["merged_into"]) == (200, survivor.pk)


# --- update ----------------------------------------------------------------------------------


def test_update_changes_only_the_given_fields_and_records_the_channel(api, channel):
    customer = CustomerFactory(name="Anna", email="anna@example.com", email_validated_at=timezone.now())
    StoreFactory(code="spb-2")

    response = patch(
        api,
        f"/api/v1/customers/{customer.pk}",
        {"email": "Anna.P@Example.com", "birth_date": "1990-05-17", "store": "spb-2", "reason": "asked at the till"},
    )

    body = response.json()
    assert response.status_code == 200
    assert (body["name"], body["email"], body["email_validated"], body["birth_date"], body["registration_store"]) == (
        "Anna",
        "anna.p@example.com",
        False,
        "1990-05-17",
        "spb-2",
    )
    change = CustomerChange.objects.get(customer=customer, action="update")
    assert (change.actor_channel, change.reason) == (channel, "asked at the till")
    assert set(change.changes) == {"email", "email_validated_at", "birth_date", "registration_store"}


def test_update_links_the_calling_channels_external_id(api, channel):
    customer = CustomerFactory()
    other = ChannelFactory(code="erp")
    ExternalIdFactory(customer=customer, channel=other, external_id="erp-9")

    response = patch(api, f"/api/v1/customers/{customer.pk}", {"external_id": "u-42"})

    assert response.status_code == 200
    assert sorted(response.json()["external_ids"], key=lambda row: row["channel"]) == sorted(
        [{"channel": channel.code, "external_id": "u-42"}, {"channel": "erp", "external_id": "erp-9"}],
        key=lambda row: row["channel"],
    )


def test_update_with_a_taken_external_id_changes_nothing(api, channel):
    customer = CustomerFactory(name="Anna")
    ExternalIdFactory(channel=channel, external_id="u-42")

    response = patch(api, f"/api/v1/customers/{customer.pk}", {"name": "Anna P", "external_id": "u-42"})

    assert error(response) == (409, "external_id_taken")
    customer.refresh_from_db()
    assert customer.name == "Anna"
    assert not CustomerChange.objects.filter(customer=customer).exists()


def test_update_of_a_merged_customer_is_409_naming_the_survivor(api, channel):
    survivor, duplicate = CustomerFactory(), CustomerFactory(name="Old")
    customer_merge(duplicate=duplicate, survivor=survivor, actor=channel_actor(channel), reason="same person")

    response = patch(api, f"/api/v1/customers/{duplicate.pk}", {"name": "New"})

    assert error(response) == (409, "customer_merged")
    assert response.json()["error"]["merged_into"] == survivor.pk
    duplicate.refresh_from_db()
    assert duplicate.name == "Old"


def test_update_of_an_anonymised_customer_is_409(api, channel):
    customer = CustomerFactory()
    customer_anonymise(customer=customer, actor=channel_actor(channel), reason="GDPR request")

    response = patch(api, f"/api/v1/customers/{customer.pk}", {"name": "Back"})

    assert error(response) == (409, "customer_anonymised")


def test_update_to_a_phone_of_another_customer_is_409(api):
    customer, other = CustomerFactory(), CustomerFactory(phone="+79161234567")

    response = patch(api, f"/api/v1/customers/{customer.pk}", {"phone": "8 916 123-45-67"})

    assert error(response) == (409, "customer_exists")
    assert response.json()["error"]["customer_id"] == other.pk


def test_update_of_an_unknown_customer_is_404(api):
    response = patch(api, "/api/v1/customers/999999", {"name": "Anna"})

    assert error(response) == (404, "customer_not_found")


# --- list ------------------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["+79161234567", "89161234567", "8 916 123 45 67", "+7 (916) 123-45-67"])
def test_lookup_by_phone_in_any_format(api, typed):
    wanted = CustomerFactory(phone="+79161234567")
    CustomerFactory(phone="+79031112233")

    response = api.get("/api/v1/customers", {"phone": typed})

    assert [row["id"] for row in response.json()["results"]] == [wanted.pk]


def test_list_filters_by_kind_email_and_card(api):
    b2b = B2bCustomerFactory(email="studio@example.com")
    carded = CustomerFactory(card_number="CARD-7")
    CustomerFactory(email="other@example.com")

    def ids(**query):
        return [row["id"] for row in api.get("/api/v1/customers", query).json()["results"]]

    assert ids(kind="b2b") == [b2b.pk]
    assert ids(email="Studio@Example.COM") == [b2b.pk]
    assert ids(card_number="CARD-7") == [carded.pk]
    assert ids(card_number="CARD-8") == []


def test_list_query_count_is_constant(api, django_assert_max_num_queries):
    for customer in CustomerFactory.create_batch(30):
        ExternalIdFactory(customer=customer)

    with django_assert_max_num_queries(5):  # key lookup, last-used touch, count, page, external ids
        response = api.get("/api/v1/customers", {"page_size": 25})

    assert len(response.json()["results"]) == 25
    assert response.json()["count"] == 30


# --- identify --------------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["8 (916) 123-45-67", "+7 916 1234567", "9161234567"])
def test_identify_by_phone_in_any_format_finds_the_same_customer(api, typed):
    wanted = CustomerFactory(phone="+79161234567")
    CustomerFactory(phone="+79031112233")

    response = identify(api, phone=typed)

    assert response.status_code == 200
    assert (response.json()["customer"]["id"], response.json()["redirected_from"]) == (wanted.pk, None)


def test_identify_answers_membership_tier_and_balance(api):
    customer = NonMemberFactory()
    points_accrue(customer=customer, amount=120, kind="purchase", operation_key="test:identify:1")

    response = identify(api, phone=str(customer.phone))

    body = response.json()
    assert (body["membership"], body["tier"]) == ("non_member", "basic")
    assert body["balance"] == {
        "balance_type": "retail",
        "available": "120.00",
        "pending": "0.00",
        "held": "0.00",
        "debt": "0.00",
        "expiring_soon": "0.00",
        "expiring_within_days": 30,
    }


def test_identify_by_card_external_id_and_email(api, channel):
    customer = CustomerFactory(card_number="CARD-1", email="anna@example.com")
    ExternalIdFactory(customer=customer, channel=channel, external_id="u-42")
    ExternalIdFactory(channel=ChannelFactory(), external_id="u-43")  # another channel's id

    found = [
        identify(api, card="CARD-1"),
        identify(api, external_id="u-42"),
        identify(api, email="Anna@Example.com"),
    ]
    foreign = identify(api, external_id="u-43")

    assert [response.json()["customer"]["id"] for response in found] == [customer.pk] * 3
    assert error(foreign) == (404, "customer_not_found")


def test_identify_of_a_b2b_customer_shows_the_b2b_balance(api):
    customer = B2bCustomerFactory()
    points_accrue(customer=customer, amount=70, kind="purchase", balance_type="b2b", operation_key="test:b2b:1")

    balance = identify(api, phone=str(customer.phone)).json()["balance"]

    assert (balance["balance_type"], balance["available"]) == ("b2b", "70.00")


@pytest.mark.parametrize("query", [{}, {"phone": "89161234567", "card": "CARD-1"}, {"phone": "", "email": ""}])
def test_identify_needs_exactly_one_identifier(api, query):
    assert error(identify(api, **query)) == (400, "identifier_required")


def test_identify_unknown_and_invalid(api):
    assert error(identify(api, phone="89160000000")) == (404, "customer_not_found")
    assert error(identify(api, phone="not a phone")) == (400, "validation_error")
    assert error(identify(api, card="x" * 40)) == (400, "validation_error")


def test_identify_follows_a_merge_to_the_survivor(api, channel):
    survivor = CustomerFactory(phone="+79031112233")
    duplicate = CustomerFactory(phone="+79161234567", card_number="CARD-1")
    survivor.card_number = "CARD-2"
    survivor.save()
    customer_merge(duplicate=duplicate, survivor=survivor, actor=channel_actor(channel), reason="same person")

    by_phone = identify(api, phone="8 916 123-45-67").json()
    by_card = identify(api, card="CARD-1").json()
    direct = identify(api, phone="+79031112233").json()

    assert (by_phone["customer"]["id"], by_phone["redirected_from"]) == (survivor.pk, duplicate.pk)
    assert (by_card["customer"]["id"], by_card["redirected_from"]) == (survivor.pk, duplicate.pk)
    assert (direct["customer"]["id"], direct["redirected_from"]) == (survivor.pk, None)


def test_identify_prefers_an_active_customer_over_a_merged_one_with_the_same_phone(api, channel):
    survivor, duplicate = CustomerFactory(), CustomerFactory(phone="+79161234567")
    customer_merge(duplicate=duplicate, survivor=survivor, actor=channel_actor(channel), reason="same person")
    newcomer = CustomerFactory(phone="+79161234567")  # the number changed hands after the merge

    response = identify(api, phone="+79161234567")

    assert (response.json()["customer"]["id"], response.json()["redirected_from"]) == (newcomer.pk, None)


def test_identify_runs_in_a_bounded_number_of_queries(api, channel, django_assert_max_num_queries):
    customer = CustomerFactory(registration_store=StoreFactory())
    ExternalIdFactory(customer=customer, channel=channel, external_id="u-42")
    for number in range(5):
        points_accrue(
            customer=customer,
            amount=10,
            kind="purchase",
            operation_key=f"test:bounded:{number}",
            expires_at=timezone.now() + timedelta(days=5 + number),
        )

    # key lookup, last-used touch, match, profile, external ids, account, expiring sum,
    # tier code (the customer's row, else the entry tier)
    with django_assert_max_num_queries(9):
        response = identify(api, external_id="u-42")

    assert response.json()["balance"]["expiring_soon"] == "50.00"


def test_a_channel_without_the_read_scope_cannot_identify(channel_client, customer):
    writer = channel_client(ChannelFactory(scopes=["customers:write"]))

    assert error(identify(writer, phone=str(customer.phone))) == (403, "missing_scope")


def test_birth_date_in_the_future_is_refused(api, customer):
    tomorrow = (date.today() + timedelta(days=2)).isoformat()

    response = patch(api, f"/api/v1/customers/{customer.pk}", {"birth_date": tomorrow})

    assert error(response) == (400, "invalid_customer_data")
    customer.refresh_from_db()
    assert customer.birth_date is None
