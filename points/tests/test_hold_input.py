"""The redemption calls' plain-request readers (``hold_input_plain``, ``hold_commit_input_plain``) against the
serializers they stand in for: whatever they accept, the serializer accepts too and validates to the same values;
whatever else, they leave to the serializer."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.tests.plain_input import exact, json_numbers
from points.api.serializers import HoldCommitInput, HoldCreateInput, hold_commit_input_plain, hold_input_plain

pytestmark = pytest.mark.django_db

READERS = {HoldCreateInput: hold_input_plain, HoldCommitInput: hold_commit_input_plain}


def _check(serializer_class, data) -> dict | None:
    plain = READERS[serializer_class](data)
    if plain is not None:
        serializer = serializer_class(data=data)
        assert serializer.is_valid(), (data, serializer.errors)
        assert exact(plain) == exact(dict(serializer.validated_data))
    return plain


@pytest.mark.parametrize(
    "data",
    [
        {"amount": "300"},
        {"amount": "0.01", "first_order": True, "timeout_seconds": 60},
        {"amount": 999999999999, "first_order": False, "timeout_seconds": None, "unknown": "ignored"},
        {"amount": "000012.5", "timeout_seconds": 7 * 24 * 3600},
    ],
    ids=["bench", "every-field", "integers-and-nulls", "leading-zeros-and-the-longest-timeout"],
)
def test_a_plain_hold_is_read_as_the_serializer_reads_it(data):
    assert _check(HoldCreateInput, data) is not None


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"amount": "0"},  # below the minimum: an error
        {"amount": "0.00"},
        {"amount": "-1"},
        {"amount": " 1"},
        {"amount": 1.5},
        {"amount": "1e2"},
        {"amount": "1.001"},
        {"amount": "1" * 13},
        {"amount": True},
        {"amount": None},
        {"amount": "1", "first_order": None},
        {"amount": "1", "first_order": "true"},
        {"amount": "1", "first_order": 1},
        {"amount": "1", "timeout_seconds": 0},
        {"amount": "1", "timeout_seconds": 7 * 24 * 3600 + 1},
        {"amount": "1", "timeout_seconds": "60"},
        {"amount": "1", "timeout_seconds": True},
        {"amount": "1", "balance_type": "retail"},  # checked against the database by the serializer
    ],
)
def test_anything_else_in_a_hold_is_left_to_the_serializer(data):
    assert _check(HoldCreateInput, data) is None


@pytest.mark.parametrize(
    ("data", "plain"),
    [
        ({}, True),
        ({"amount": None}, True),
        ({"amount": "12.30"}, True),
        ({"amount": "0"}, False),
        ({"amount": 1.5}, False),
        ({"amount": " 1"}, False),
    ],
)
def test_a_commit_is_read_plainly_only_when_the_serializer_reads_it_alike(data, plain):
    assert (_check(HoldCommitInput, data) is not None) is plain


def test_a_form_is_left_to_the_serializer():
    from django.http import QueryDict

    assert hold_input_plain(QueryDict("amount=1")) is None
    assert hold_commit_input_plain(QueryDict("amount=1")) is None


_NUMBER = json_numbers(14, 3)
_VALUE = st.one_of(
    st.none(), st.booleans(), st.text(max_size=4), _NUMBER, st.integers(min_value=-2, max_value=10**7), st.just([])
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    hold=st.fixed_dictionaries(
        {}, optional={"amount": st.one_of(_NUMBER, _VALUE), "first_order": _VALUE, "timeout_seconds": _VALUE}
    ),
    commit=st.fixed_dictionaries({}, optional={"amount": st.one_of(_NUMBER, _VALUE)}),
)
def test_whatever_the_plain_readers_accept_the_serializers_accept_alike(hold, commit):
    _check(HoldCreateInput, hold)
    _check(HoldCommitInput, commit)
