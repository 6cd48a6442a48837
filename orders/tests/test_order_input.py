"""The order calls' plain-request readers (``orders.api.plain_input``) against the serializers they stand in for:
whatever a reader accepts, its serializer accepts too and validates to the same values (a placement's store still a
code); whatever else, the reader leaves to the serializer."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.tests.plain_input import exact, json_numbers, store_present
from customers.tests.factories import StoreFactory
from orders.api.plain_input import line_requests_input_plain, order_place_input_plain
from orders.api.serializers import CancellationInput, DeliveryInput, OrderPlaceInput, ReturnInput

pytestmark = pytest.mark.django_db

STORE = "store-1"
LINE = {"line_number": 1, "sku": "SOFA-1", "quantity": "1", "price": "10000.00"}
ORDER = {"number": "SO-1", "lines": [LINE]}


def _validated(serializer_class, data) -> dict | None:
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        return None
    validated = dict(serializer.validated_data)
    if serializer_class is OrderPlaceInput and validated["store"] is not None:
        validated["store"] = validated["store"].code
    return validated


def _check_place(data) -> dict | None:
    plain = order_place_input_plain(data)
    if plain is not None:
        store_present(plain["store"])
        assert exact(plain) == exact(_validated(OrderPlaceInput, data)), data
    return plain


def _check_lines(serializer_class, data) -> dict | None:
    plain = line_requests_input_plain(serializer_class, data)
    if plain is not None:
        assert exact(plain) == exact(_validated(serializer_class, data)), data
    return plain


@pytest.fixture(autouse=True)
def store(db):
    return StoreFactory(code=STORE)


@pytest.mark.parametrize(
    "data",
    [
        ORDER,
        {
            **ORDER,
            "customer_id": 7,
            "phone": "",
            "card": "C-1",
            "store": STORE,
            "seller": "Анна",
            "created_at": None,
            "offline": False,
            "delivered": True,
            "redeem": "1000",
            "hold_id": 12,
            "calculation": "v1.abc:def",
            "parent_number": "",
            "payments": [
                {"payment_id": "pay-1", "method": "card", "amount": "0.01", "paid_at": None},
                {"payment_id": "pay-2", "method": "cash", "amount": 10_000_000_000},
            ],
        },
        {**ORDER, "customer_id": None, "store": None, "redeem": None, "hold_id": None, "payments": []},
        {
            **ORDER,
            "lines": [
                {**LINE, "discount_percent": "99.99", "operation_type": "paid_service", "name": "Диван «Осло»"},
                {**LINE, "line_number": 2, "quantity": "0.001", "price": "0", "category": "", "new_arrival": False},
                {**LINE, "line_number": 3, "quantity": "0000012", "price": "00.5", "category": "sofas"},
                {**LINE, "line_number": 4, "quantity": 3, "price": 99999, "attributes": {"colour": "grey", "n": [1]}},
                {**LINE, "line_number": 5, "attributes": {}, "new_arrival": None, "unknown": "ignored"},
            ],
        },
    ],
    ids=["minimal", "every-field", "nulls", "line-variants"],
)
def test_a_plain_placement_is_read_as_the_serializer_reads_it(data):
    assert _check_place(data) is not None


@pytest.mark.parametrize(
    "change",
    [
        {"line_number": 0},
        {"line_number": "1"},
        {"line_number": 2**31},
        {"quantity": "0"},  # below the minimum
        {"quantity": " 1"},  # trimmed by the serializer
        {"quantity": 1.5},
        {"price": "-1"},
        {"price": "1" * 13},
        {"discount_percent": "100"},  # above the maximum
        {"discount_percent": "99.999"},
        {"sku": ""},
        {"sku": " SOFA-1"},
        {"sku": "A\x00B"},
        {"name": "\ud800"},
        {"category": "not a code"},
        {"operation_type": "gift"},
        {"new_arrival": "true"},
        {"attributes": []},
        {"attributes": None},
        {"attributes": {"note": "a\x00b"}},  # PostgreSQL refuses NUL in JSON
        {"attributes": {"note": "x" * 5000}},  # too long as JSON
        {"quantity": "10000000", "price": "100000000"},  # the line's amount is above the maximum
    ],
)
def test_anything_else_in_an_order_line_is_left_to_the_serializer(change):
    assert _check_place({**ORDER, "lines": [{**LINE, **change}]}) is None


@pytest.mark.parametrize(
    "change",
    [
        {"number": ""},
        {"number": None},
        {"number": "N" * 65},
        {"customer_id": 0},
        {"customer_id": "7"},
        {"customer_id": True},
        {"phone": "+7 916 123-45-67"},  # parsed by the serializer
        {"store": ""},
        {"store": "no store"},
        {"created_at": "2026-01-01T00:00:00Z"},
        {"offline": None},
        {"delivered": "true"},
        {"redeem": "-1"},
        {"redeem": "1.001"},
        {"hold_id": 0},
        {"calculation": " x"},
        {"lines": []},
        {"lines": None},
        {"lines": [LINE] * 201},
        {"lines": [None]},
        {"payments": None},
        {"payments": [{"payment_id": "p", "method": "points", "amount": "1"}]},
        {"payments": [{"payment_id": "p", "method": "card", "amount": "0"}]},
        {"payments": [{"payment_id": "p", "method": "card", "amount": "10000000000.01"}]},
        {"payments": [{"payment_id": "p", "method": "card", "amount": "1", "paid_at": "2026-01-01T00:00:00Z"}]},
        {"lines": [{**LINE, "quantity": "1000", "price": "6000000"}] * 2},  # the order's amount above the maximum
    ],
)
def test_anything_else_in_a_placement_is_left_to_the_serializer(change):
    assert _check_place({**ORDER, **change}) is None


@pytest.mark.parametrize(
    ("serializer_class", "data"),
    [
        (DeliveryInput, {"lines": [{"line_number": 2}]}),
        (DeliveryInput, {"number": "D-1", "delivered_at": None, "lines": [{"line_number": 1, "quantity": "0.5"}]}),
        (ReturnInput, {"lines": [{"line_number": 2, "quantity": "1"}], "reason": "bench: one chair returned"}),
        (ReturnInput, {"lines": [{"line_number": 2, "quantity": None}, {"line_number": 3}], "reason": ""}),
        (CancellationInput, {}),
        (CancellationInput, {"lines": None, "reason": "Передумал"}),
        (CancellationInput, {"lines": [{"line_number": 2147483647, "quantity": 2}]}),
    ],
)
def test_a_plain_line_request_is_read_as_the_serializer_reads_it(serializer_class, data):
    assert _check_lines(serializer_class, data) is not None


@pytest.mark.parametrize(
    ("serializer_class", "data"),
    [
        (DeliveryInput, {}),
        (DeliveryInput, {"lines": []}),
        (DeliveryInput, {"lines": [{"line_number": 2}], "delivered_at": "2026-01-01T00:00:00Z"}),
        (DeliveryInput, {"lines": [{"line_number": 2}], "number": " D-1"}),
        (DeliveryInput, {"lines": [{"line_number": 2, "quantity": "0"}]}),
        (DeliveryInput, {"lines": [{"quantity": "1"}]}),
        (DeliveryInput, {"lines": [[2]]}),
        (ReturnInput, {"lines": [{"line_number": 2}], "reason": None}),
        (ReturnInput, {"lines": [{"line_number": 2}], "reason": "r" * 1001}),
        (ReturnInput, {"lines": [{"line_number": True}]}),
        (CancellationInput, {"lines": []}),
        (CancellationInput, {"lines": [{"line_number": 1}] * 201}),
    ],
)
def test_anything_else_in_a_line_request_is_left_to_the_serializer(serializer_class, data):
    assert _check_lines(serializer_class, data) is None


def test_a_form_is_left_to_the_serializer():
    from django.http import QueryDict

    assert order_place_input_plain(QueryDict("number=1")) is None
    assert line_requests_input_plain(DeliveryInput, QueryDict("lines=1")) is None


_TEXT = st.one_of(
    st.text(max_size=6),
    st.sampled_from(["", " ", "SOFA-1", "sofas", STORE, "purchase", "card", "points", "x\x00", "\ud800", " a "]),
)
_NUMBER = json_numbers(16, 5)
_VALUE = st.one_of(
    st.none(), st.booleans(), _TEXT, _NUMBER, st.just([]), st.just({}), st.dictionaries(_TEXT, _TEXT, max_size=2)
)
_LINE_NUMBER = st.one_of(st.integers(min_value=-1, max_value=2**31), _VALUE)
_ORDER_LINE = st.fixed_dictionaries(
    {"line_number": _LINE_NUMBER, "sku": st.one_of(st.just("SOFA-1"), _VALUE), "quantity": _NUMBER, "price": _NUMBER},
    optional={
        name: _VALUE for name in ["discount_percent", "name", "category", "operation_type", "new_arrival", "attributes"]
    },
)
_PAYMENT = st.fixed_dictionaries(
    {"payment_id": _VALUE, "method": _VALUE, "amount": _NUMBER}, optional={"paid_at": _VALUE}
)
_LINE_REQUEST = st.fixed_dictionaries({"line_number": _LINE_NUMBER}, optional={"quantity": st.one_of(_NUMBER, _VALUE)})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    order=st.fixed_dictionaries(
        {"number": st.one_of(st.just("SO-1"), _VALUE), "lines": st.lists(_ORDER_LINE, max_size=3)},
        optional={
            "customer_id": st.one_of(_VALUE, st.integers(min_value=-2, max_value=2**64)),
            "hold_id": _VALUE,
            "store": _VALUE,
            "redeem": _NUMBER,
            "phone": _VALUE,
            "card": _VALUE,
            "seller": _VALUE,
            "created_at": _VALUE,
            "offline": _VALUE,
            "delivered": _VALUE,
            "calculation": _VALUE,
            "parent_number": _VALUE,
            "payments": st.lists(_PAYMENT, max_size=2),
        },
    )
)
def test_whatever_the_placement_reader_accepts_the_serializer_accepts_alike(order):
    _check_place(order)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    serializer_class=st.sampled_from([DeliveryInput, CancellationInput, ReturnInput]),
    data=st.fixed_dictionaries(
        {},
        optional={
            "lines": st.one_of(st.none(), st.lists(_LINE_REQUEST, max_size=3)),
            "number": _VALUE,
            "delivered_at": _VALUE,
            "reason": _VALUE,
        },
    ),
)
def test_whatever_the_line_request_readers_accept_the_serializers_accept_alike(serializer_class, data):
    _check_lines(serializer_class, data)
