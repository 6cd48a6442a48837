import pytest

from customers.models import Customer
from customers.tests.factories import CustomerFactory


@pytest.mark.smoke
@pytest.mark.django_db
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
    assert Customer.objects.get(pk=body["id"]).membership == Customer.Membership.NON_MEMBER


@pytest.mark.django_db
def test_second_customer_with_the_same_phone_is_409_naming_the_existing_one(api, customer):
    response = api.post("/api/v1/customers", {"phone": str(customer.phone)}, format="json", HTTP_IDEMPOTENCY_KEY="r2")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "customer_exists"
    assert response.json()["error"]["customer_id"] == customer.pk
    assert Customer.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("typed", ["+79161234567", "89161234567", "8 916 123 45 67", "+7 (916) 123-45-67"])
def test_lookup_by_phone_in_any_format(api, typed):
    wanted = CustomerFactory(phone="+79161234567")
    CustomerFactory(phone="+79031112233")

    response = api.get("/api/v1/customers", {"phone": typed})

    assert [row["id"] for row in response.json()["results"]] == [wanted.pk]


@pytest.mark.django_db
def test_detail_and_not_found(api, customer):
    found = api.get(f"/api/v1/customers/{customer.pk}")
    missing = api.get(f"/api/v1/customers/{customer.pk + 1000}")

    assert found.json()["id"] == customer.pk
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "customer_not_found"


@pytest.mark.django_db
def test_list_query_count_is_constant(api, django_assert_max_num_queries):
    CustomerFactory.create_batch(30)

    with django_assert_max_num_queries(4):  # key lookup, last-used touch, count, page
        response = api.get("/api/v1/customers", {"page_size": 25})

    assert len(response.json()["results"]) == 25
    assert response.json()["count"] == 30
