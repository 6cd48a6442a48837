"""One error format for every 4xx, and never a 500 for bad input."""

import pytest

URL = "/api/v1/customers"


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) >= {"code", "message", "fields"}
    return body["error"]


@pytest.mark.django_db
def test_malformed_json_is_400_parse_error(api):
    response = api.post(URL, "{not json", content_type="application/json", HTTP_IDEMPOTENCY_KEY="k")

    assert response.status_code == 400
    assert error_of(response)["code"] == "parse_error"


@pytest.mark.django_db
def test_non_json_body_is_415(api):
    response = api.post(URL, "phone=1", content_type="application/x-www-form-urlencoded", HTTP_IDEMPOTENCY_KEY="k")

    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"


@pytest.mark.smoke
@pytest.mark.django_db
def test_invalid_field_is_400_validation_error_with_field_details(api):
    response = api.post(URL, {"phone": "12", "name": "x" * 201}, format="json", HTTP_IDEMPOTENCY_KEY="k")

    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert set(error["fields"]) == {"phone", "name"}
    assert error["fields"]["name"][0]["code"] == "max_length"
    assert error["fields"]["phone"][0]["code"] == "invalid"


@pytest.mark.django_db
@pytest.mark.parametrize("body", [[], "a string", 42, None, {"phone": ["+79161234567"]}, {"phone": {"x": 1}}])
def test_wrongly_shaped_bodies_are_4xx_not_500(api, body):
    response = api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY=f"k-{body!r}")

    assert 400 <= response.status_code < 500
    assert error_of(response)["code"] in {"validation_error", "parse_error"}


@pytest.mark.django_db
def test_unknown_api_path_is_404_in_the_error_format(api):
    response = api.get("/api/v1/no-such-thing")

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


@pytest.mark.django_db
def test_unknown_object_is_404_with_its_own_code(api):
    response = api.get("/api/v1/customers/999999")

    assert response.status_code == 404
    assert error_of(response)["code"] == "customer_not_found"


@pytest.mark.django_db
def test_wrong_method_is_405(api):
    response = api.delete("/api/v1/customers/1")

    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"


@pytest.mark.django_db
def test_bad_filter_value_is_400_validation_error(api):
    response = api.get(URL, {"membership": "vip"})

    assert response.status_code == 400
    assert error_of(response)["fields"]["membership"][0]["code"] == "invalid_choice"
