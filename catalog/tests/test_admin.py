"""The catalogue admin: lists, the product CSV import (line-numbered errors, nothing half-imported), categories."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile

from catalog.models import Category, Product
from catalog.services import catalog_upsert

pytestmark = pytest.mark.django_db

IMPORT_URL = "/admin/catalog/product/import-csv/"
PRODUCTS_URL = "/admin/catalog/product/"
HEADER = "sku,name,category,new_arrival,arrival_date,excluded_from_earning,excluded_from_redemption,is_active\n"


@pytest.fixture
def tree(db):
    catalog_upsert(
        categories=[
            {"code": "furniture", "name": "Furniture"},
            {"code": "sofas", "name": "Sofas", "parent": "furniture"},
        ],
        products=[],
    )


def upload(client, text: str):
    return client.post(IMPORT_URL, {"file": SimpleUploadedFile("products.csv", text.encode(), "text/csv")})


def texts(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def file_errors(response) -> list[str]:
    assert response.status_code == 200
    return list(response.context["form"].errors["file"])


def test_import_creates_and_updates_products(admin_client, tree):
    catalog_upsert(categories=[], products=[{"sku": "SOFA-1", "name": "Old name"}, {"sku": "SOFA-2", "name": "Same"}])
    csv = HEADER + (
        "SOFA-1,Oslo sofa,sofas,yes,2026-03-01,0,1,true\n"
        "SOFA-2,Same,,,,,,\n"
        '"CHAIR-1","Chair, oak",furniture,no,,TRUE,false,1\n'
    )

    response = upload(admin_client, csv)

    assert response.status_code == 302
    assert texts(response) == ["Products imported: 1 created, 1 updated, 1 unchanged."]
    sofa = Product.objects.get(sku="SOFA-1")
    assert (sofa.name, sofa.category.code, sofa.new_arrival, sofa.arrival_date.isoformat()) == (
        "Oslo sofa",
        "sofas",
        True,
        "2026-03-01",
    )
    assert (sofa.excluded_from_earning, sofa.excluded_from_redemption, sofa.is_active) == (False, True, True)
    chair = Product.objects.get(sku="CHAIR-1")
    assert (chair.name, chair.excluded_from_earning) == ("Chair, oak", True)


def test_a_bad_line_is_reported_with_its_number_and_nothing_is_imported(admin_client, tree):
    csv = HEADER + (
        "SOFA-1,Oslo sofa,sofas,1,2026-03-01,0,0,1\n"
        "SOFA-2,Bergen sofa,sofas,maybe,,0,0,1\n"
        "SOFA-3,Lund sofa,sofas,0,03/01/2026,0,0,1\n"
    )

    response = upload(admin_client, csv)

    assert file_errors(response) == [
        "Line 3, new_arrival: expected 1/0, true/false or yes/no, got “maybe”",
        "Line 4, arrival_date: expected a date as YYYY-MM-DD, got “03/01/2026”",
    ]
    assert not Product.objects.exists()


def test_errors_found_by_the_service_are_reported_with_line_numbers(admin_client, tree):
    csv = HEADER + "SOFA-1,Oslo sofa,sofas,0,,0,0,1\nSOFA-2,Bergen sofa,beds,1,,0,0,1\n"

    response = upload(admin_client, csv)

    assert file_errors(response) == [
        "Line 3, arrival_date: A new arrival needs an arrival date.",
        "Line 3, category: Unknown category code “beds”.",
    ]
    assert not Product.objects.exists()


def test_the_header_row_is_required(admin_client, tree):
    response = upload(admin_client, "SOFA-1,Oslo sofa,sofas\n")

    assert len(file_errors(response)) == 1
    assert file_errors(response)[0].startswith("The header row must name the columns")
    assert not Product.objects.exists()


def test_import_needs_the_add_and_change_permissions(client):
    user = get_user_model().objects.create_user("clerk", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_product"))
    client.force_login(user)

    assert client.get(IMPORT_URL).status_code == 403
    assert "Import CSV" not in client.get(PRODUCTS_URL).content.decode()

    user.user_permissions.add(*Permission.objects.filter(codename__in=["add_product", "change_product"]))
    assert client.get(IMPORT_URL).status_code == 200
    assert "Import CSV" in client.get(PRODUCTS_URL).content.decode()


def test_product_list_search_and_filters(admin_client, tree):
    catalog_upsert(
        categories=[],
        products=[
            {"sku": "SOFA-1", "name": "Oslo sofa", "category": "sofas", "excluded_from_earning": True},
            {"sku": "CHAIR-1", "name": "Oak chair", "category": "furniture"},
        ],
    )

    def found(query):
        response = admin_client.get(PRODUCTS_URL, query)
        assert response.status_code == 200
        return [product.sku for product in response.context["cl"].result_list]

    assert found({"q": "oslo"}) == ["SOFA-1"]
    assert found({"q": "CHAIR-1"}) == ["CHAIR-1"]
    assert found({"excluded_from_earning__exact": "1"}) == ["SOFA-1"]
    assert found({"category__id__exact": Category.objects.get(code="furniture").pk}) == ["CHAIR-1"]


def test_adding_a_category_in_the_admin_keeps_its_path(admin_client, tree):
    furniture = Category.objects.get(code="furniture")

    response = admin_client.post(
        "/admin/catalog/category/add/", {"code": "armchairs", "name": "Armchairs", "parent": furniture.pk}
    )

    assert response.status_code == 302
    assert Category.objects.get(code="armchairs").path == "furniture/armchairs"


def test_moving_a_category_in_the_admin_moves_its_descendants(admin_client, tree):
    catalog_upsert(categories=[{"code": "living-room", "name": "Living room"}], products=[])
    furniture = Category.objects.get(code="furniture")

    response = admin_client.post(
        f"/admin/catalog/category/{furniture.pk}/change/",
        {"name": "Furniture", "parent": Category.objects.get(code="living-room").pk},
    )

    assert response.status_code == 302
    assert dict(Category.objects.values_list("code", "path")) == {
        "living-room": "living-room",
        "furniture": "living-room/furniture",
        "sofas": "living-room/furniture/sofas",
    }


def test_a_category_cannot_move_under_its_descendant(admin_client, tree):
    furniture = Category.objects.get(code="furniture")

    response = admin_client.post(
        f"/admin/catalog/category/{furniture.pk}/change/",
        {"name": "Furniture", "parent": Category.objects.get(code="sofas").pk},
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["parent"]
    assert Category.objects.get(code="furniture").path == "furniture"
