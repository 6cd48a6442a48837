"""OpenAPI schema and docs (drf-spectacular): valid, and every operation documents its errors."""

import pytest
from django.core.management import call_command

from core.exceptions import ERROR_CATALOGUE

MUTATING = {"post", "put", "patch", "delete"}


@pytest.fixture
def schema(client, db):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def operations(schema: dict):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def test_schema_generates_without_warnings():
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")


def test_schema_covers_the_channel_api(schema):
    assert {"/api/v1/channel", "/api/v1/customers", "/api/v1/customers/{customer_id}"} <= set(schema["paths"])
    assert schema["components"]["securitySchemes"]["channelKey"]["scheme"] == "bearer"


def test_every_mutating_operation_takes_an_idempotency_key(schema):
    mutating = [(path, op) for path, method, op in operations(schema) if method in MUTATING]

    assert mutating
    for path, operation in mutating:
        headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
        assert "Idempotency-Key" in headers, path


def test_every_operation_documents_its_errors_with_examples_of_known_codes(schema):
    for path, method, operation in operations(schema):
        errors = {status: body for status, body in operation["responses"].items() if status.startswith("4")}
        assert "401" in errors, (method, path)
        for status, body in errors.items():
            examples = body["content"]["application/json"]["examples"]
            assert examples, (method, path, status)
            for example in examples.values():
                code = example["value"]["error"]["code"]
                assert ERROR_CATALOGUE[code].status == int(status), (method, path, code)


def test_create_customer_documents_its_own_business_error(schema):
    responses = schema["paths"]["/api/v1/customers"]["post"]["responses"]

    codes = {
        example["value"]["error"]["code"]
        for example in responses["409"]["content"]["application/json"]["examples"].values()
    }
    assert codes == {"customer_exists", "card_number_taken", "external_id_taken", "request_in_progress"}
    assert "422" in responses


@pytest.mark.smoke
@pytest.mark.django_db
def test_interactive_docs_are_served_without_authentication(client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    assert b"swagger-ui" in response.content
