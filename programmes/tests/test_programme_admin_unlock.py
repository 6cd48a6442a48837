"""The operation types whose points unlock on payment (``Programme.unlock_on_payment``) are ticked on the programme's
admin page and reach the cart calculation."""

import json
from decimal import Decimal as D

import pytest
from django.urls import reverse

from programmes.calculator import CartLine, cart_calculate
from programmes.models import OperationType, Programme

pytestmark = pytest.mark.django_db


def programme_post_data(client, programme: Programme) -> dict:
    """What the programme page posts back when nothing is touched (the tiers inline included)."""
    response = client.get(reverse("admin:programmes_programme_change", args=[programme.pk]))
    form = response.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if isinstance(value, list):
            data[name] = value
        elif value is not None:
            data[name] = value.pk if hasattr(value, "pk") else value
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        data[f"{formset.prefix}-TOTAL_FORMS"] = len(formset.forms)
        data[f"{formset.prefix}-INITIAL_FORMS"] = len(formset.forms)
        for index, tier_form in enumerate(formset.forms):
            for name, field in tier_form.fields.items():
                value = tier_form.initial.get(name, field.initial)
                if isinstance(value, dict):
                    data[f"{formset.prefix}-{index}-{name}"] = "{}" if not value else json.dumps(value)
                elif value is not None:
                    data[f"{formset.prefix}-{index}-{name}"] = value.pk if hasattr(value, "pk") else value
    return data


def test_the_programme_page_shows_a_checkbox_per_operation_type(admin_client, retail):
    retail.unlock_on_payment = ["loan_interest"]
    retail.save(update_fields=["unlock_on_payment"])

    page = admin_client.get(reverse("admin:programmes_programme_change", args=[retail.pk])).content.decode()

    for value in OperationType.values:
        assert f'type="checkbox" name="unlock_on_payment" value="{value}"' in page
    assert 'name="unlock_on_payment" value="loan_interest" id="id_unlock_on_payment_1" checked' in page
    assert 'name="unlock_on_payment" value="purchase" id="id_unlock_on_payment_0" checked' not in page


def test_ticked_operation_types_are_saved_in_the_order_of_the_choices_and_reach_the_calculator(admin_client, retail):
    data = programme_post_data(admin_client, retail)
    data["unlock_on_payment"] = ["paid_service", "loan_interest"]

    response = admin_client.post(reverse("admin:programmes_programme_change", args=[retail.pk]), data)

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    retail.refresh_from_db()
    assert retail.unlock_on_payment == ["loan_interest", "paid_service"]
    result = cart_calculate(customer=None, lines=[CartLine(sku="X-1", quantity=D("1"), price=D("100"))])
    assert set(result.unlock_on_payment) == {"loan_interest", "paid_service"}


def test_unticking_every_type_saves_an_empty_list(admin_client, retail):
    retail.unlock_on_payment = ["loan_interest"]
    retail.save(update_fields=["unlock_on_payment"])
    data = programme_post_data(admin_client, retail)
    data.pop("unlock_on_payment")

    response = admin_client.post(reverse("admin:programmes_programme_change", args=[retail.pk]), data)

    assert response.status_code == 302
    retail.refresh_from_db()
    assert retail.unlock_on_payment == []


def test_an_unknown_operation_type_is_a_form_error_and_nothing_changes(admin_client, retail):
    retail.unlock_on_payment = ["loan_interest"]
    retail.save(update_fields=["unlock_on_payment"])
    data = programme_post_data(admin_client, retail)
    data["unlock_on_payment"] = ["loan_interest", "pawn"]

    response = admin_client.post(reverse("admin:programmes_programme_change", args=[retail.pk]), data)

    assert response.status_code == 200
    assert "unlock_on_payment" in response.context["adminform"].form.errors
    retail.refresh_from_db()
    assert retail.unlock_on_payment == ["loan_interest"]
