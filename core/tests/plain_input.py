"""Shared by the tests that hold a plain-request reader (``core.api.plain_input``) to its serializer."""


def exact(value):
    """Decimals by their digits and exponent (``Decimal("1.0") == Decimal("1.000")``), types included."""
    if isinstance(value, dict):
        return {key: exact(item) for key, item in value.items()}
    if isinstance(value, list):
        return [exact(item) for item in value]
    return (type(value).__name__, str(value))
