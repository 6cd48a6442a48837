"""``catalog_upsert``: counts, idempotency, the category tree's paths, validation that changes nothing."""

from datetime import date

import pytest

from catalog.exceptions import CatalogInvalid, CatalogTooLarge
from catalog.models import Category, Product
from catalog.services import MAX_ITEMS, Counts, catalog_upsert

pytestmark = pytest.mark.django_db

TREE = [
    {"code": "furniture", "name": "Furniture"},
    {"code": "sofas", "name": "Sofas", "parent": "furniture"},
    {"code": "corner-sofas", "name": "Corner sofas", "parent": "sofas"},
    {"code": "lighting", "name": "Lighting"},
]


def sofa(sku="SOFA-1", **fields):
    return {"sku": sku, "name": "Oslo sofa", "category": "sofas", **fields}


def paths() -> dict[str, str]:
    return dict(Category.objects.values_list("code", "path"))


def snapshot() -> tuple[list, list]:
    return (
        list(Category.objects.order_by("code").values()),
        list(Product.objects.order_by("sku").values()),
    )


@pytest.mark.smoke
def test_creates_the_tree_parents_first_and_the_products():
    result = catalog_upsert(
        categories=list(reversed(TREE)),  # children before parents in the request
        products=[sofa(new_arrival=True, arrival_date=date(2026, 3, 1)), sofa("LAMP-1", category="lighting")],
    )

    assert result.categories == Counts(created=4)
    assert result.products == Counts(created=2)
    assert (result.created, result.updated, result.unchanged) == (6, 0, 0)
    assert paths() == {
        "furniture": "furniture",
        "sofas": "furniture/sofas",
        "corner-sofas": "furniture/sofas/corner-sofas",
        "lighting": "lighting",
    }
    assert Category.objects.get(code="corner-sofas").parent.code == "sofas"
    product = Product.objects.get(sku="SOFA-1")
    assert (product.name, product.category.code, product.new_arrival, product.arrival_date) == (
        "Oslo sofa",
        "sofas",
        True,
        date(2026, 3, 1),
    )
    assert (product.excluded_from_earning, product.excluded_from_redemption, product.is_active) == (False, False, True)


def test_repeating_the_same_upsert_changes_nothing_and_counts_unchanged():
    products = [sofa(), sofa("SOFA-2", excluded_from_earning=True)]
    catalog_upsert(categories=TREE, products=products)
    before = snapshot()

    result = catalog_upsert(categories=TREE, products=products)

    assert result.categories == Counts(unchanged=4)
    assert result.products == Counts(unchanged=2)
    assert snapshot() == before  # not even updated_at moved


def test_counts_created_updated_and_unchanged_products():
    catalog_upsert(categories=TREE, products=[sofa("A"), sofa("B"), sofa("C")])
    untouched = Product.objects.get(sku="C").updated_at

    result = catalog_upsert(
        categories=[],
        products=[sofa("A"), sofa("B", name="Bergen sofa", excluded_from_redemption=True), sofa("C"), sofa("D")],
    )

    assert result.products == Counts(created=1, updated=1, unchanged=2)
    b = Product.objects.get(sku="B")
    assert (b.name, b.excluded_from_redemption) == ("Bergen sofa", True)
    assert Product.objects.get(sku="C").updated_at == untouched
    assert Product.objects.count() == 4


def test_an_omitted_optional_field_takes_its_default():
    catalog_upsert(categories=TREE, products=[sofa(is_active=False, excluded_from_earning=True)])

    result = catalog_upsert(categories=[], products=[{"sku": "SOFA-1", "name": "Oslo sofa"}])

    assert result.products == Counts(updated=1)
    product = Product.objects.get(sku="SOFA-1")
    assert (product.category, product.is_active, product.excluded_from_earning) == (None, True, False)


def test_re_parenting_a_category_moves_the_paths_of_all_its_descendants():
    catalog_upsert(categories=[*TREE, {"code": "living-room", "name": "Living room"}], products=[])

    result = catalog_upsert(categories=[{"code": "sofas", "name": "Sofas", "parent": "living-room"}], products=[])

    assert result.categories == Counts(updated=1)
    assert paths() == {
        "furniture": "furniture",
        "living-room": "living-room",
        "sofas": "living-room/sofas",
        "corner-sofas": "living-room/sofas/corner-sofas",  # not in the request, moved with its parent
        "lighting": "lighting",
    }
    assert Category.objects.get(code="sofas").parent.code == "living-room"


def test_a_category_can_become_a_root():
    catalog_upsert(categories=TREE, products=[])

    catalog_upsert(categories=[{"code": "sofas", "name": "Sofas", "parent": None}], products=[])

    assert paths()["corner-sofas"] == "sofas/corner-sofas"
    assert Category.objects.get(code="sofas").parent is None


def test_a_product_may_name_a_category_of_the_same_request():
    result = catalog_upsert(categories=[{"code": "beds", "name": "Beds"}], products=[sofa("BED-1", category="beds")])

    assert (result.categories, result.products) == (Counts(created=1), Counts(created=1))
    assert Product.objects.get(sku="BED-1").category.code == "beds"


def test_validation_names_every_bad_item_and_field_and_changes_nothing():
    catalog_upsert(categories=TREE, products=[sofa()])
    before = snapshot()

    with pytest.raises(CatalogInvalid) as raised:
        catalog_upsert(
            categories=[
                {"code": "tables", "name": "Tables", "parent": "furniture"},  # valid, must not be created
                {"code": "chairs", "name": "Chairs", "parent": "no-such"},
                {"code": "bad code!", "name": ""},
            ],
            products=[
                sofa("OK-1"),
                sofa("SOFA-1", name="Renamed"),  # valid update, must not be applied
                sofa("X-2", category="unknown"),
                sofa("X-3", new_arrival=True),
                sofa("OK-1"),
                {"sku": "X-5", "name": "Odd", "is_active": "maybe", "arrival_date": "01.03.2026"},
            ],
        )

    assert {key: [item["code"] for item in items] for key, items in raised.value.fields.items()} == {
        "categories.1.parent": ["unknown_category"],
        "categories.2.code": ["invalid"],
        "categories.2.name": ["required"],
        "products.2.category": ["unknown_category"],
        "products.3.arrival_date": ["required"],
        "products.4.sku": ["duplicate"],
        "products.5.is_active": ["invalid"],
        "products.5.arrival_date": ["invalid"],
    }
    assert raised.value.code == "catalog_invalid"
    assert snapshot() == before


def test_a_category_cycle_is_an_error():
    catalog_upsert(categories=TREE, products=[])
    before = snapshot()

    with pytest.raises(CatalogInvalid) as raised:
        catalog_upsert(categories=[{"code": "furniture", "name": "Furniture", "parent": "corner-sofas"}], products=[])

    assert [item["code"] for item in raised.value.fields["categories.0.parent"]] == ["cycle"]
    assert snapshot() == before


def test_a_category_cannot_be_its_own_parent():
    with pytest.raises(CatalogInvalid) as raised:
        catalog_upsert(categories=[{"code": "loop", "name": "Loop", "parent": "loop"}], products=[])

    assert list(raised.value.fields) == ["categories.0.parent"]
    assert not Category.objects.exists()


def test_more_than_the_limit_is_refused_before_anything_else():
    products = [sofa(f"S-{n}") for n in range(MAX_ITEMS)]

    with pytest.raises(CatalogTooLarge):
        catalog_upsert(categories=[{"code": "sofas", "name": "Sofas"}], products=products)

    assert not Category.objects.exists()


def test_upserting_500_products_takes_a_bounded_number_of_queries(django_assert_max_num_queries):
    catalog_upsert(categories=TREE, products=[])
    catalog_upsert(categories=[], products=[sofa(f"S-{n}") for n in range(0, 500, 2)])  # half of them exist
    products = [sofa(f"S-{n}", category="corner-sofas" if n % 3 else "sofas") for n in range(500)]

    # savepoint, advisory lock, category tree, stored products, one upsert batch, release: whatever the size
    with django_assert_max_num_queries(6):
        result = catalog_upsert(categories=TREE, products=products)

    assert result.products == Counts(created=250, updated=166, unchanged=84)
