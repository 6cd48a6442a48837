"""The order calls' usual requests read without DRF's serializers (``core.api.plain_input``).

Placing, delivering, cancelling and returning are the lifecycle's calls; their serializers' per-request field copies
and validators cost a sixth of a placement. Each reader here accepts only what its serializer accepts as it is and
returns what the serializer would (the place's store still a code, looked up by the view); anything else — a phone,
a time, an unknown store, every error — is left to the serializer, with its wording. ``test_order_input`` holds each
reader to its serializer.
"""

from __future__ import annotations

from rest_framework import serializers

from core.api.plain_input import (
    NotPlain,
    boolean,
    choice_reader,
    decimal_reader,
    integer_reader,
    list_reader,
    null_only,
    object_reader,
    optional_boolean,
    read,
    readers,
    slug_reader,
    text_reader,
)
from orders.api.serializers import (
    CancellationInput,
    DeliveryInput,
    LineRequestInput,
    OrderLineInput,
    OrderPlaceInput,
    PaymentInput,
    ReturnInput,
    attributes_checked,
    order_amount_above_maximum,
)


def _attributes(value):
    """A JSON object the serializer keeps as sent (``attributes_checked``)."""
    if type(value) is not dict:
        raise NotPlain
    try:
        return attributes_checked(dict(value))
    except serializers.ValidationError:
        raise NotPlain from None


def _blank_only(value):
    """A phone left blank; a phone itself is parsed by the serializer."""
    if value == "":
        return ""
    raise NotPlain


_LINE = OrderLineInput._declared_fields
_LINE_READERS = readers(
    OrderLineInput,
    {
        "line_number": integer_reader(_LINE["line_number"]),
        "sku": text_reader(_LINE["sku"]),
        "quantity": decimal_reader(_LINE["quantity"]),
        "price": decimal_reader(_LINE["price"]),
        "discount_percent": decimal_reader(_LINE["discount_percent"]),
        "name": text_reader(_LINE["name"]),
        "category": slug_reader(_LINE["category"]),  # with validate_category: blank is None
        "operation_type": choice_reader(_LINE["operation_type"]),
        "new_arrival": optional_boolean,
        "attributes": _attributes,
    },
)
_PAYMENT = PaymentInput._declared_fields
_PAYMENT_READERS = readers(
    PaymentInput,
    {
        "payment_id": text_reader(_PAYMENT["payment_id"]),
        "method": choice_reader(_PAYMENT["method"]),
        "amount": decimal_reader(_PAYMENT["amount"]),
        "paid_at": null_only,
    },
)
_PLACE = OrderPlaceInput._declared_fields
_PLACE_READERS = readers(
    OrderPlaceInput,
    {
        "number": text_reader(_PLACE["number"]),
        "customer_id": integer_reader(_PLACE["customer_id"]),
        "phone": _blank_only,
        "card": text_reader(_PLACE["card"]),
        "store": slug_reader(_PLACE["store"]),  # the code: the view looks the store up
        "seller": text_reader(_PLACE["seller"]),
        "created_at": null_only,
        "offline": boolean,
        "delivered": boolean,
        "redeem": decimal_reader(_PLACE["redeem"]),
        "hold_id": integer_reader(_PLACE["hold_id"]),
        "calculation": text_reader(_PLACE["calculation"]),
        "parent_number": text_reader(_PLACE["parent_number"]),
        "lines": list_reader(_PLACE["lines"], object_reader(_LINE_READERS)),
        "payments": list_reader(_PLACE["payments"], object_reader(_PAYMENT_READERS)),
    },
)
assert _PLACE["phone"].allow_blank
assert _PLACE["phone"].default == ""
assert not _PLACE["store"].allow_blank
assert _LINE["category"].allow_blank

_LINE_REQUEST = object_reader(
    readers(
        LineRequestInput,
        {
            "line_number": integer_reader(LineRequestInput._declared_fields["line_number"]),
            "quantity": decimal_reader(LineRequestInput._declared_fields["quantity"]),
        },
    )
)


def _line_requests(serializer: type[serializers.Serializer]):
    return list_reader(serializer._declared_fields["lines"], _LINE_REQUEST)


_READERS = {
    DeliveryInput: readers(
        DeliveryInput,
        {
            "number": text_reader(DeliveryInput._declared_fields["number"]),
            "delivered_at": null_only,
            "lines": _line_requests(DeliveryInput),
        },
    ),
    CancellationInput: readers(
        CancellationInput,
        {
            "lines": _line_requests(CancellationInput),
            "reason": text_reader(CancellationInput._declared_fields["reason"]),
        },
    ),
    ReturnInput: readers(
        ReturnInput,
        {"lines": _line_requests(ReturnInput), "reason": text_reader(ReturnInput._declared_fields["reason"])},
    ),
}


def order_place_input_plain(data) -> dict | None:
    """``OrderPlaceInput(data=data).validated_data`` for a plain placement — except that ``store`` is still the
    code —, or None: validate it with the serializer."""
    if type(data) is not dict:
        return None
    try:
        validated = read(data, _PLACE_READERS)
    except NotPlain:
        return None
    if order_amount_above_maximum(validated["lines"]) is not None:
        return None  # the serializer's error names the field
    return validated


def line_requests_input_plain(serializer: type[serializers.Serializer], data) -> dict | None:
    """``serializer(data=data).validated_data`` for a plain delivery, cancellation or return, or None: validate it
    with the serializer."""
    if type(data) is not dict:
        return None
    try:
        return read(data, _READERS[serializer])
    except NotPlain:
        return None
