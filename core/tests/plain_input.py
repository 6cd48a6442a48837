"""Shared by the tests that hold a plain-request reader (``core.api.plain_input``) to its serializer."""

from hypothesis import strategies as st

from customers.tests.factories import StoreFactory
from integrations.models import Store


def exact(value):
    """Decimals by their digits and exponent (``Decimal("1.0") == Decimal("1.000")``), types included."""
    if isinstance(value, dict):
        return {key: exact(item) for key, item in value.items()}
    if isinstance(value, list):
        return [exact(item) for item in value]
    return (type(value).__name__, str(value))


def json_numbers(whole_digits: int, places: int):
    """Numbers as a JSON body may carry them: decimal strings of every kind, digit strings around a field's limits,
    integers and floats."""
    return st.one_of(
        st.decimals(allow_nan=True, allow_infinity=True, places=None).map(str),
        st.from_regex(rf"-?[0-9]{{0,{whole_digits}}}(\.[0-9]{{0,{places}}})?", fullmatch=True),
        st.integers(min_value=-(10**15), max_value=10**15),
        st.floats(allow_nan=False, allow_infinity=False),
    )


def store_present(code: str | None) -> None:
    """The store of ``code`` exists (a reader leaves the store's lookup, and ``unknown_store``, to the view)."""
    if code is not None and not Store.objects.filter(code=code).exists():
        StoreFactory(code=code)
