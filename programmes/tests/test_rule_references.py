"""A tier, store or category that a rule names cannot be deleted (the rule would silently apply to everything), and
deletes of any kind renew the cached rules."""

from decimal import Decimal as D

import pytest
from django.db import transaction
from django.db.models import ProtectedError
from django.urls import reverse

from catalog.tests.factories import CategoryFactory
from customers.tests.factories import StoreFactory
from programmes.calculator import CartLine, cart_calculate
from programmes.models import EarningRule, Tier
from programmes.tests.factories import EarningRuleFactory, RedemptionRuleFactory

pytestmark = pytest.mark.django_db


def test_a_category_named_by_a_rule_cannot_be_deleted_in_code_or_in_the_admin(admin_client):
    category = CategoryFactory()
    rule = RedemptionRuleFactory(kind="forbidden", percent=None, categories=[category])

    with pytest.raises(ProtectedError), transaction.atomic():
        category.delete()
    page = admin_client.get(reverse("admin:catalog_category_delete", args=[category.pk]))
    posted = admin_client.post(reverse("admin:catalog_category_delete", args=[category.pk]), {"post": "yes"})

    assert page.status_code == 200
    assert rule.name in page.content.decode()  # listed as protected, no confirm button
    assert posted.status_code == 200
    assert CategoryFactory._meta.model.objects.filter(pk=category.pk).exists()


def test_a_category_no_rule_names_is_deleted():
    category = CategoryFactory()
    EarningRuleFactory(rate_percent=D("3"))

    category.delete()

    assert not CategoryFactory._meta.model.objects.filter(pk=category.pk).exists()


def test_a_store_named_by_a_promotion_cannot_be_deleted(admin_client):
    from programmes.tests.factories import PromotionFactory

    store = StoreFactory()
    promotion = PromotionFactory(stores=[store])

    with pytest.raises(ProtectedError), transaction.atomic():
        store.delete()
    page = admin_client.get(reverse("admin:integrations_store_delete", args=[store.pk]))
    assert promotion.name in page.content.decode()


def test_a_tier_named_by_a_rule_cannot_be_deleted_from_the_programme_page(admin_client, retail, tiers):
    EarningRuleFactory(rate_percent=D("9"), tiers=[tiers["platinum"]])
    url = reverse("admin:programmes_programme_change", args=[retail.pk])
    form = admin_client.get(url).context["adminform"].form
    inline = admin_client.get(url).context["inline_admin_formsets"][0].formset
    data = {key: value for key, value in form.initial.items() if value is not None}
    data.update(
        {
            "balance_type": retail.balance_type_id,
            f"{inline.prefix}-TOTAL_FORMS": len(inline.forms),
            f"{inline.prefix}-INITIAL_FORMS": len(inline.forms),
        }
    )
    for index, tier_form in enumerate(inline.forms):
        for name, field in tier_form.fields.items():
            value = tier_form.initial.get(name, field.initial)
            if value is not None and not isinstance(value, dict):
                data[f"{inline.prefix}-{index}-{name}"] = value.pk if hasattr(value, "pk") else value
        data[f"{inline.prefix}-{index}-extra_perks"] = "{}"
        if tier_form.instance.code == "platinum":
            data[f"{inline.prefix}-{index}-DELETE"] = "on"

    response = admin_client.post(url, data)

    assert response.status_code == 200  # the form again, with the refusal
    assert "named by rules" in response.content.decode()
    assert Tier.objects.filter(pk=tiers["platinum"].pk).exists()


def test_a_queryset_delete_of_rules_renews_the_cached_rulebook(customer, tiers):
    EarningRuleFactory(rate_percent=D("50"))
    cart = [CartLine(sku="X", quantity=D(1), price=D(1000))]
    assert cart_calculate(customer=customer, lines=cart).earn_points == 500

    EarningRule.objects.all().delete()

    assert cart_calculate(customer=customer, lines=cart).earn_points == 50  # basic's 5 % again
