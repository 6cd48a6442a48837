"""Reading the usual, plain form of a channel request without DRF's serializers.

A serializer copies its declared fields for every request and runs each field's validators; on the hottest calls
that cost more than the work itself. A *reader* accepts only values that the serializer's field accepts as they are
and returns what the field would; anything else raises ``NotPlain``, and the caller hands the whole request to the
serializer (so every error keeps its wording). Readers take their limits from the serializer's fields, so the two
cannot drift apart; each use has a hypothesis test holding it to its serializer.
"""

from __future__ import annotations

import re
from decimal import Decimal

from rest_framework import serializers


class NotPlain(Exception):
    pass


_SLUG = re.compile(r"[-a-zA-Z0-9_]+")


def decimal_reader(field: serializers.DecimalField):
    assert field.min_value is None or field.min_value >= 0
    assert not field.localize
    # No sign, at most the whole digits and decimal places allowed: within max_digits, not below 0, and quantizing
    # to the field's places is exact.
    pattern = re.compile(rf"[0-9]{{1,{field.max_whole_digits}}}(?:\.[0-9]{{1,{field.decimal_places}}})?")
    exponent = Decimal(1).scaleb(-field.decimal_places)
    minimum, maximum = field.min_value or 0, field.max_value

    def read(value):
        if value is None and field.allow_null:
            return None
        if type(value) is int:
            value = str(value)
        if type(value) is not str or pattern.fullmatch(value) is None:
            raise NotPlain
        number = Decimal(value).quantize(exponent)
        if number < minimum or (maximum is not None and number > maximum):
            raise NotPlain
        return number

    return read


def integer_reader(field: serializers.IntegerField):
    """A JSON integer within the field's bounds (None where the field allows it)."""
    assert field.min_value is not None
    assert field.max_value is not None

    def read(value):
        if value is None and field.allow_null:
            return None
        if type(value) is not int or not field.min_value <= value <= field.max_value:
            raise NotPlain
        return value

    return read


def boolean(value):
    """A JSON true or false, for a field that does not allow null."""
    if value is True or value is False:
        return value
    raise NotPlain


def text_reader(field: serializers.CharField):
    assert type(field) is serializers.CharField
    assert field.trim_whitespace
    assert field.min_length is None
    assert not field.allow_null

    def read(value):
        if type(value) is not str or len(value) > field.max_length or value != value.strip() or "\x00" in value:
            raise NotPlain
        if not value:
            if not field.allow_blank:
                raise NotPlain
            return ""
        if not value.isascii():
            try:
                value.encode()  # a lone surrogate cannot be encoded; the serializer refuses it
            except UnicodeEncodeError:
                raise NotPlain from None
        return value

    return read


def slug_reader(field: serializers.SlugField):
    """A code as it is, or None for None (and for a blank code where the field allows it)."""
    assert isinstance(field, serializers.SlugField)
    assert not field.allow_unicode
    assert field.allow_null

    def read(value):
        if value is None or (value == "" and field.allow_blank):
            return None
        if type(value) is not str or len(value) > field.max_length or _SLUG.fullmatch(value) is None:
            raise NotPlain
        return value

    return read


def choice_reader(field: serializers.ChoiceField):
    assert not field.allow_null

    def read(value):
        if type(value) is not str or value not in field.choice_strings_to_values:
            raise NotPlain
        return field.choice_strings_to_values[value]

    return read


def optional_boolean(value):
    if value is None or value is True or value is False:
        return value
    raise NotPlain


def null_only(value):
    if value is None:
        return None
    raise NotPlain


def readers(serializer: type[serializers.Serializer], readers: dict) -> list[tuple[str, object, object]]:
    """(name, reader, default: the field's, or ``NotPlain`` for a required field) for each declared field; a reader
    of None marks a field the caller reads apart, and it is left out."""
    fields = serializer._declared_fields
    assert set(fields) == set(readers), "a reader for each field"
    read_here = [name for name, reader in readers.items() if reader is not None]
    # A callable default (``list``, ``dict``) is called for each request, as the field does.
    assert not any(getattr(fields[name].default, "requires_context", False) for name in read_here)
    return [(name, readers[name], NotPlain if fields[name].required else fields[name].default) for name in read_here]


def list_reader(field: serializers.ListField, read_item):
    """A JSON list within the field's lengths, each item read by ``read_item`` (None where the field allows it)."""
    assert field.max_length is not None
    minimum = field.min_length or 0

    def read_list(value):
        if value is None and field.allow_null:
            return None
        if type(value) is not list or not minimum <= len(value) <= field.max_length:
            raise NotPlain
        return [read_item(item) for item in value]

    return read_list


def object_reader(readers) -> object:
    """A JSON object read by ``readers`` (``readers()``)."""

    def read_object(value):
        if type(value) is not dict:
            raise NotPlain
        return read(value, readers)

    return read_object


def read(data: dict, readers) -> dict:
    """The validated values of ``data`` by ``readers`` (``readers()``); ``NotPlain`` if one refuses or a required one
    is missing."""
    validated = {}
    for name, reader, default in readers:
        if name in data:
            validated[name] = reader(data[name])
        elif default is NotPlain:
            raise NotPlain
        else:
            validated[name] = default() if callable(default) else default
    return validated
