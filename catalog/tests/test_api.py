"""Channel API of the catalogue: the bulk upsert, its scope and idempotency, product list filters and detail."""

import pytest

from catalog.models import Category, Product
from catalog.services import catalog_upsert
from integrations.tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db

UPSERT_URL = "/api/v1/catalog/upsert"
PRODUCTS_URL = "/api/v1/catalog/products"
BODY = {
    "categories": [
        {"code": "sofas", "name": "Sofas", "parent": "furniture"},
        {"code": "furniture", "name": "Furniture"},
    ],
    "products": [
        {"sku": "SOFA-1", "name": "Oslo sofa", "category": "sofas", "new_arrival": True, "arrival_date": "2026-03-01"},
        {"sku": "TABLE-1", "name": "Table", "category": "furniture", "excluded_from_redemption": True},
    ],
}


def post(client, body, key="sync-1"):
    return client.post(UPSERT_URL, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def error(response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def skus(response) -> list[str]:
    assert response.status_code == 200
    return [product["sku"] for product in response.json()["results"]]


@pytest.fixture
def catalogue(db):
    catalog_upsert(
        categories=[
            {"code": "furniture", "name": "Furniture"},
            {"code": "sofas", "name": "Sofas", "parent": "furniture"},
            {"code": "corner-sofas", "name": "Corner sofas", "parent": "sofas"},
            {"code": "furniture-care", "name": "Furniture care"},  # a code that starts like "furniture"
        ],
        products=[
            {"sku": "CHAIR-1", "name": "Chair", "category": "furniture"},
            {
                "sku": "SOFA-1",
                "name": "Oslo sofa",
                "category": "sofas",
                "new_arrival": True,
                "arrival_date": "2026-03-01",
            },
            {"sku": "CORNER-1", "name": "Corner sofa", "category": "corner-sofas"},
            {"sku": "POLISH-1", "name": "Polish", "category": "furniture-care"},
            {"sku": "GIFT-1", "name": "Gift card"},
        ],
    )


@pytest.mark.smoke
def test_upsert_creates_and_answers_the_counts(api):
    response = post(api, BODY)

    assert response.status_code == 200
    assert response.json() == {
        "categories": {"created": 2, "updated": 0, "unchanged": 0},
        "products": {"created": 2, "updated": 0, "unchanged": 0},
    }
    assert dict(Category.objects.values_list("code", "path")) == {"furniture": "furniture", "sofas": "furniture/sofas"}
    assert Product.objects.get(sku="TABLE-1").excluded_from_redemption is True


def test_the_same_sync_with_a_new_key_counts_everything_unchanged(api):
    post(api, BODY, key="sync-1")

    response = post(api, BODY, key="sync-2")

    assert response.json() == {
        "categories": {"created": 0, "updated": 0, "unchanged": 2},
        "products": {"created": 0, "updated": 0, "unchanged": 2},
    }


def test_a_retry_with_the_same_key_replays_the_answer(api):
    first = post(api, BODY, key="sync-1")
    Product.objects.filter(sku="SOFA-1").update(name="Changed meanwhile")

    second = post(api, BODY, key="sync-1")

    assert second.status_code == 200
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Product.objects.get(sku="SOFA-1").name == "Changed meanwhile"  # not applied again


def test_upsert_needs_an_idempotency_key(api):
    response = api.post(UPSERT_URL, BODY, format="json")

    assert error(response) == (400, "idempotency_key_required")


def test_upsert_needs_the_write_scope(channel_client):
    reader = channel_client(ChannelFactory(scopes=["catalog:read"]))

    response = post(reader, BODY)

    assert error(response) == (403, "missing_scope")
    assert not Product.objects.exists()


def test_invalid_items_are_named_and_nothing_is_changed(api):
    body = {**BODY, "products": [*BODY["products"], {"sku": "X", "name": "X", "category": "nope"}]}

    response = post(api, body)

    assert error(response) == (400, "catalog_invalid")
    assert list(response.json()["error"]["fields"]) == ["products.2.category"]
    assert not Category.objects.exists()
    assert not Product.objects.exists()


def test_a_malformed_item_is_a_validation_error_with_its_index(api):
    body = {"products": [{"sku": "A", "name": "A"}, {"sku": "B", "name": "B", "arrival_date": "tomorrow"}]}

    response = post(api, body)

    assert error(response) == (400, "validation_error")
    assert list(response.json()["error"]["fields"]) == ["products.1.arrival_date"]


def test_too_many_items_are_refused(api, settings):
    body = {"products": [{"sku": f"S-{n}", "name": "S"} for n in range(5001)]}

    response = post(api, body)

    assert error(response) == (400, "catalog_too_large")
    assert not Product.objects.exists()


def test_list_needs_the_read_scope(channel_client, catalogue):
    writer = channel_client(ChannelFactory(scopes=["catalog:write"]))

    assert error(writer.get(PRODUCTS_URL)) == (403, "missing_scope")


def test_list_pages_products_by_sku(api, catalogue):
    response = api.get(PRODUCTS_URL, {"page_size": 2})

    assert skus(response) == ["CHAIR-1", "CORNER-1"]
    assert response.json()["count"] == 5


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"category": "furniture"}, ["CHAIR-1", "CORNER-1", "SOFA-1"]),  # not furniture-care
        ({"category": "sofas"}, ["CORNER-1", "SOFA-1"]),
        ({"category": "corner-sofas"}, ["CORNER-1"]),
        ({"category": "no-such"}, []),
        ({"new_arrival": "true"}, ["SOFA-1"]),
        ({"new_arrival": "false", "category": "sofas"}, ["CORNER-1"]),
        ({"sku": "GIFT-1"}, ["GIFT-1"]),
    ],
)
def test_list_filters(api, catalogue, query, expected):
    assert skus(api.get(PRODUCTS_URL, query)) == expected


def test_detail_and_not_found(api, catalogue):
    response = api.get(f"{PRODUCTS_URL}/SOFA-1")

    assert response.status_code == 200
    assert response.json() == {
        "sku": "SOFA-1",
        "name": "Oslo sofa",
        "category": "sofas",
        "category_path": "furniture/sofas",
        "new_arrival": True,
        "arrival_date": "2026-03-01",
        "excluded_from_earning": False,
        "excluded_from_redemption": False,
        "is_active": True,
        "updated_at": response.json()["updated_at"],
    }
    assert error(api.get(f"{PRODUCTS_URL}/NOPE")) == (404, "product_not_found")


def test_detail_of_a_product_without_category(api, catalogue):
    body = api.get(f"{PRODUCTS_URL}/GIFT-1").json()

    assert (body["category"], body["category_path"]) == (None, None)
