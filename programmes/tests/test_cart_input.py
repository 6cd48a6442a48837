"""The cart calculator's plain-request reader (``cart_input_plain``) against the serializer it stands in for: whatever
it accepts, ``CartCalculateInput`` accepts too and validates to the same values (the store still a code); whatever
else, it leaves to the serializer."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.tests.plain_input import exact, json_numbers, store_present
from customers.tests.factories import StoreFactory
from programmes.api.serializers import CartCalculateInput, cart_input_plain

pytestmark = pytest.mark.django_db

STORE = "store-1"
LINE = {"sku": "SOFA-1", "quantity": "1", "price": "10000.00"}


def _serializer(data) -> dict | None:
    serializer = CartCalculateInput(data=data)
    if not serializer.is_valid():
        return None
    validated = dict(serializer.validated_data)
    validated["store"] = validated["store"].code if validated["store"] is not None else None
    validated["lines"] = [dict(line) for line in validated["lines"]]
    return validated


def _check(data) -> dict | None:
    plain = cart_input_plain(data)
    if plain is not None:
        store_present(plain["store"])
        assert exact(plain) == exact(_serializer(data))
    return plain


@pytest.fixture(autouse=True)
def store(db):
    return StoreFactory(code=STORE)


@pytest.mark.parametrize(
    "data",
    [
        {"lines": [LINE]},
        {"customer_id": 7, "store": STORE, "redeem": "1000", "first_order": True, "at": None, "lines": [LINE]},
        {"customer_id": None, "store": None, "redeem": 15, "first_order": None, "lines": []},
        {
            "lines": [
                {**LINE, "discount_percent": "99.99", "operation_type": "paid_service", "name": "Диван «Осло»"},
                {**LINE, "sku": "", "quantity": "0.001", "price": "0", "category": "", "new_arrival": False},
                {**LINE, "quantity": "0000012", "price": "00.5", "category": "sofas", "excluded_from_earning": True},
                {**LINE, "quantity": 3, "price": 99999, "excluded_from_redemption": None, "unknown": "ignored"},
            ]
        },
    ],
    ids=["minimal", "every-field", "nulls-and-no-lines", "line-variants"],
)
def test_a_plain_request_is_read_as_the_serializer_reads_it(data):
    assert _check(data) is not None


@pytest.mark.parametrize(
    "change",
    [
        {"quantity": " 1"},  # trimmed by the serializer
        {"quantity": 1.5},  # a JSON float
        {"quantity": "1e2"},
        {"quantity": "1.0001"},  # too many places: an error
        {"quantity": "-1"},
        {"quantity": True},
        {"price": "1" * 13},  # too many whole digits: an error
        {"discount_percent": "1000"},  # too many whole digits
        {"sku": " SOFA-1"},
        {"sku": None},
        {"sku": 12},
        {"sku": "S" * 200},
        {"sku": "A\x00B"},
        {"name": "\ud800"},
        {"operation_type": "gift"},
        {"operation_type": ""},
        {"category": "not a code"},
        {"category": "sofas\n"},
        {"new_arrival": "true"},
        {"new_arrival": 1},
    ],
)
def test_anything_else_in_a_line_is_left_to_the_serializer(change):
    assert _check({"lines": [{**LINE, **change}]}) is None


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"lines": "SOFA-1"},
        {"lines": [None]},
        {"lines": [["SOFA-1"]]},
        {"lines": [{"quantity": "1", "price": "1"}]},
        {"lines": [LINE], "customer_id": "7"},
        {"lines": [LINE], "customer_id": 0},
        {"lines": [LINE], "customer_id": True},
        {"lines": [LINE], "store": ""},
        {"lines": [LINE], "store": "no store"},
        {"lines": [LINE], "at": "2026-01-01T00:00:00Z"},
        {"lines": [LINE], "redeem": "-1"},
        {"lines": [LINE], "redeem": "1.001"},
        {"lines": [LINE], "first_order": "yes"},
        {"lines": [LINE] * 201},
    ],
)
def test_anything_else_in_the_cart_is_left_to_the_serializer(data):
    assert _check(data) is None


def test_a_form_is_left_to_the_serializer():
    from django.http import QueryDict

    assert cart_input_plain(QueryDict("lines=1")) is None


_TEXT = st.one_of(
    st.text(max_size=6),
    st.sampled_from(["", " ", "SOFA-1", "sofas", STORE, "purchase", "paid_service", "x\x00", "\ud800", " a "]),
)
_NUMBER = json_numbers(16, 5)
_VALUE = st.one_of(st.none(), st.booleans(), _TEXT, _NUMBER, st.just([]), st.just({}))
_LINE_FIELDS = [
    "sku",
    "quantity",
    "price",
    "discount_percent",
    "operation_type",
    "name",
    "category",
    "new_arrival",
    "excluded_from_earning",
    "excluded_from_redemption",
]
_LINE_VALUE = st.fixed_dictionaries(
    {
        "sku": st.one_of(st.sampled_from(["SOFA-1", "", " X"]), _VALUE),
        "quantity": st.one_of(_NUMBER, _VALUE),
        "price": st.one_of(_NUMBER, _VALUE),
    },
    optional={name: _VALUE for name in _LINE_FIELDS[3:]},
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cart=st.fixed_dictionaries(
        {"lines": st.lists(_LINE_VALUE, max_size=3)},
        optional={
            "customer_id": st.one_of(_VALUE, st.integers(min_value=-2, max_value=10**20)),
            "store": _VALUE,
            "redeem": _NUMBER,
            "first_order": _VALUE,
            "at": st.one_of(st.none(), _TEXT),
        },
    )
)
def test_whatever_the_plain_reader_accepts_the_serializer_accepts_alike(cart):
    _check(cart)
