"""Phone numbers as customers type them become one E.164 number, or ``invalid_phone``."""

import pytest
from phonenumber_field.phonenumber import PhoneNumber

from customers.exceptions import InvalidPhone
from customers.phones import phone_normalise, phone_or_none

TYPED = ["8 (916) 123-45-67", "+7 916 1234567", "9161234567", "89161234567", "+7 (916) 123-45-67", " 8-916-123-4567 "]


@pytest.mark.smoke
@pytest.mark.parametrize("typed", TYPED)
def test_any_russian_format_normalises_to_e164(typed):
    assert phone_normalise(typed).as_e164 == "+79161234567"


def test_a_phone_number_object_passes_through():
    number = PhoneNumber.from_string("+79161234567")

    assert phone_normalise(number) is number


def test_foreign_numbers_keep_their_country_code():
    assert phone_normalise("+44 20 7946 0018").as_e164 == "+442079460018"


@pytest.mark.parametrize("garbage", ["", "abc", "123", "8 (916) 123-45", "+7 916 123456789012", "Anna"])
def test_garbage_is_invalid_phone_naming_what_was_typed(garbage):
    with pytest.raises(InvalidPhone) as refused:
        phone_normalise(garbage)

    assert refused.value.code == "invalid_phone"
    assert refused.value.extra == {"phone": garbage}


def test_phone_or_none_answers_none_for_a_name_and_the_number_for_a_phone():
    assert phone_or_none("Anna Petrova") is None
    assert phone_or_none("8 916 123 45 67").as_e164 == "+79161234567"
