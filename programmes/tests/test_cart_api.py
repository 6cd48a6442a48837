"""The cart calculator's channel API: ``POST /api/v1/carts/calculate`` (SPEC F-ORD-2, F-RED-4)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation
from rest_framework import serializers
from rest_framework.test import APIClient

from catalog.tests.factories import CategoryFactory, ProductFactory
from core.actors import Actor
from customers.models import Customer
from customers.services import customer_merge
from customers.tests.factories import B2bCustomerFactory, CustomerFactory, StoreFactory
from integrations.models import Channel
from integrations.scopes import Scope
from integrations.tests.factories import ChannelFactory
from points.services import points_accrue
from programmes.api.serializers import CartOutput, cart_answer
from programmes.calculator import MAX_LINES, CartLine, cart_calculate, explain
from programmes.models import Tier
from programmes.services import purchase_record
from programmes.tests.factories import EPOCH, EarningRuleFactory, PromotionFactory, RedemptionRuleFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/carts/calculate"
SOFA = {"sku": "SOFA-1", "quantity": "1", "price": "10000.00"}
CHAIRS = {"sku": "CHAIR-1", "quantity": "2", "price": "4000.00", "discount_percent": "10"}


def calculate(client: APIClient, cart: dict, **headers: str):
    return client.post(URL, cart, format="json", **headers)


def gold_customer(points: str) -> Customer:
    """A member in the Gold tier (10 % earning, 25 % cap) with ``points`` to spend."""
    customer = CustomerFactory()
    purchase_record(
        customer=customer, amount="350000", occurred_at=timezone.now(), source_type="order", source_id="o-1"
    )
    points_accrue(customer=customer, amount=points, kind="manual", operation_key=f"gift-{customer.pk}")
    return customer


@pytest.fixture
def till(channel_client: Callable[..., APIClient]) -> APIClient:
    """A showroom till that may calculate carts and nothing else."""
    return channel_client(ChannelFactory(kind=Channel.Kind.SHOWROOM_POS, scopes=[Scope.CARTS_CALCULATE]))


def _explanation(code: str, text: str, value: str | None, rule: dict | None = None) -> dict:
    return {"code": code, "text": text, "value": value, "rule": rule}


@pytest.mark.smoke
def test_an_anonymous_cart_previews_what_it_earns_and_nothing_is_redeemable(api, tiers):
    response = calculate(api, {"lines": [SOFA]})

    assert response.status_code == 200
    body = response.json()
    basic = {"type": "tier", "id": tiers["basic"].pk, "name": "Basic"}
    anonymous = _explanation("anonymous", "Points can be spent only by an identified member", "0.00")
    assert body.pop("at")
    assert body.pop("calculation")
    assert body == {
        "customer_id": None,
        "programme": "retail",
        "balance_type": "retail",
        "tier": "basic",
        "first_order": False,
        "spendable_balance": "0.00",
        "totals": {
            "total_price": "10000.00",
            "total_discount": "0.00",
            "total_amount": "10000.00",
            "max_redeemable": "0.00",
            "max_redeemable_limit": None,
            "redeem": "0.00",
            "earn_points": "500.00",
        },
        "lines": [
            {
                "index": 0,
                "sku": "SOFA-1",
                "name": "",
                "product_known": False,
                "category": None,
                "operation_type": "purchase",
                "quantity": "1.000",
                "price": "10000.00",
                "discount_percent": "0.00",
                "discount": "0.00",
                "amount": "10000.00",
                "max_redeemable": "0.00",
                "redemption_limit": anonymous,
                "redemption_caps": [
                    anonymous,
                    _explanation("tier_cap", "Up to 20% of the price for the Basic tier", "2000.00", basic),
                ],
                "redeem": "0.00",
                "earn_points": "500.00",
                "earn_rate_percent": "5.00",
                "earn_multiplier": "1.00",
                "earning": [_explanation("tier_rate", "5% — the earning rate of the Basic tier", "5.00", basic)],
            }
        ],
    }


def test_a_member_may_spend_up_to_the_tier_cap_of_each_line(till, tiers):
    customer = gold_customer("100000")

    body = calculate(till, {"customer_id": customer.pk, "lines": [SOFA, CHAIRS]}).json()

    assert (body["customer_id"], body["tier"], body["spendable_balance"]) == (customer.pk, "gold", "100000.00")
    sofa, chairs = body["lines"]
    assert (sofa["amount"], sofa["max_redeemable"], sofa["earn_points"]) == ("10000.00", "2500.00", "1000.00")
    assert (chairs["discount"], chairs["amount"], chairs["max_redeemable"]) == ("800.00", "7200.00", "1800.00")
    assert chairs["redemption_limit"] == _explanation(
        "tier_cap",
        "Up to 25% of the price for the Gold tier",
        "1800.00",
        {"type": "tier", "id": tiers["gold"].pk, "name": "Gold"},
    )
    assert body["totals"] == {
        "total_price": "18000.00",
        "total_discount": "800.00",
        "total_amount": "17200.00",
        "max_redeemable": "4300.00",
        "max_redeemable_limit": None,
        "redeem": "0.00",
        "earn_points": "1720.00",
    }


def test_a_small_balance_limits_the_cart_and_says_so(till, tiers):
    customer = gold_customer("3000")

    totals = calculate(till, {"customer_id": customer.pk, "lines": [SOFA, CHAIRS]}).json()["totals"]

    assert totals["max_redeemable"] == "3000.00"
    assert totals["max_redeemable_limit"] == _explanation(
        "spendable_balance", "The customer can spend 3000 points", "3000.00"
    )


def test_points_redeemed_within_the_maximum_are_spread_over_the_lines_and_earn_nothing(till, tiers):
    customer = gold_customer("100000")

    response = calculate(till, {"customer_id": customer.pk, "redeem": "3000", "lines": [SOFA, CHAIRS]})

    assert response.status_code == 200
    body = response.json()
    sofa, chairs = body["lines"]
    assert (sofa["redeem"], sofa["earn_points"]) == ("2500.00", "750.00")  # 10 % of 7500 paid with money
    assert (chairs["redeem"], chairs["earn_points"]) == ("500.00", "670.00")  # 10 % of 6700
    assert sofa["earning"][-1]["code"] == "paid_in_points_not_earning"
    assert (body["totals"]["redeem"], body["totals"]["earn_points"]) == ("3000.00", "1420.00")


def test_redeeming_more_than_the_maximum_is_refused_with_the_maximum(till, tiers):
    customer = gold_customer("100000")

    response = calculate(till, {"customer_id": customer.pk, "redeem": "4300.01", "lines": [SOFA, CHAIRS]})

    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["code"], error["maximum"], error["requested"]) == ("redemption_above_maximum", "4300", "4300.01")


def test_redemption_rules_cap_and_forbid_by_discount_bracket(till, tiers):
    customer = gold_customer("100000")
    share = RedemptionRuleFactory(name="Discounted 5-20 %", discount_from=5, discount_to=20, percent=Decimal("10"))
    forbidden = RedemptionRuleFactory(name="Sale", discount_from=50, discount_to=None, kind="forbidden", percent=None)
    sale = {"sku": "SALE-1", "quantity": "1", "price": "1000", "discount_percent": "50"}

    lines = calculate(till, {"customer_id": customer.pk, "lines": [SOFA, CHAIRS, sale]}).json()["lines"]

    assert lines[0]["redemption_limit"]["code"] == "tier_cap"
    assert (lines[1]["max_redeemable"], lines[1]["redemption_limit"]["rule"]["id"]) == ("720.00", share.pk)
    assert lines[2]["max_redeemable"] == "0.00"
    assert lines[2]["redemption_limit"] == _explanation(
        "rule_forbidden",
        "Points may not be spent by the rule “Sale”",
        "0.00",
        {"type": "redemption_rule", "id": forbidden.pk, "name": "Sale"},
    )


def test_a_channel_specific_earning_rule_applies_only_to_that_kind_of_channel(api, till, tiers):
    rule = EarningRuleFactory(name="Showroom 15 %", channel_kinds=[Channel.Kind.SHOWROOM_POS], rate_percent=15)

    at_the_till = calculate(till, {"lines": [SOFA]}).json()["lines"][0]
    on_the_site = calculate(api, {"lines": [SOFA]}).json()["lines"][0]

    assert (at_the_till["earn_points"], at_the_till["earn_rate_percent"]) == ("1500.00", "15.00")
    assert at_the_till["earning"] == [
        _explanation(
            "earning_rule",
            "15% by the rule “Showroom 15 %”",
            "15.00",
            {"type": "earning_rule", "id": rule.pk, "name": "Showroom 15 %"},
        )
    ]
    assert (on_the_site["earn_points"], on_the_site["earning"][0]["code"]) == ("500.00", "tier_rate")


def test_a_store_specific_promotion_applies_in_that_store_only(api, tiers):
    khimki, nevsky = StoreFactory(code="msk-khimki"), StoreFactory(code="spb-nevsky")
    promotion = PromotionFactory(name="Khimki opening", stores=[khimki], multiplier=Decimal("2"))

    in_khimki = calculate(api, {"store": "msk-khimki", "lines": [SOFA]}).json()["lines"][0]
    in_nevsky = calculate(api, {"store": nevsky.code, "lines": [SOFA]}).json()["lines"][0]

    assert (in_khimki["earn_points"], in_khimki["earn_multiplier"]) == ("1000.00", "2.00")
    assert in_khimki["earning"][1]["rule"] == {"type": "promotion", "id": promotion.pk, "name": "Khimki opening"}
    assert (in_nevsky["earn_points"], in_nevsky["earn_multiplier"]) == ("500.00", "1.00")


def test_a_catalogue_product_brings_its_category_and_flags(api, tiers):
    sofas = CategoryFactory(code="sofas")
    ProductFactory(sku="SOFA-1", name="Oslo sofa", category=sofas, excluded_from_earning=True)
    EarningRuleFactory(categories=[sofas], rate_percent=20)
    # The line's own attributes count only for SKUs the catalogue does not know.
    line = {**SOFA, "name": "Whatever", "category": "chairs", "excluded_from_earning": False}

    result = calculate(api, {"lines": [line]}).json()["lines"][0]

    assert (result["name"], result["product_known"], result["category"]) == ("Oslo sofa", True, "sofas")
    assert (result["earn_points"], result["earning"][0]["code"]) == ("0.00", "product_excluded_from_earning")


def test_a_b2b_customer_is_calculated_in_the_b2b_programme(api):
    customer = B2bCustomerFactory()

    body = calculate(api, {"customer_id": customer.pk, "lines": [SOFA]}).json()

    assert (body["programme"], body["balance_type"], body["tier"]) == ("b2b", "b2b", "partner")


def test_a_customer_kind_without_programme_is_programme_not_found(api):
    Tier.objects.filter(programme__code="b2b").delete()

    response = calculate(api, {"customer_id": B2bCustomerFactory().pk, "lines": [SOFA]})

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "programme_not_found"


def test_an_unknown_customer_is_not_found(api, tiers):
    response = calculate(api, {"customer_id": 987654321, "lines": [SOFA]})

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "customer_not_found"


def test_a_merged_customer_answers_with_the_survivor(api, channel, tiers):
    survivor, duplicate = CustomerFactory(), CustomerFactory()
    customer_merge(duplicate=duplicate, survivor=survivor, actor=Actor(channel=channel), reason="Same person")

    response = calculate(api, {"customer_id": duplicate.pk, "lines": [SOFA]})

    assert response.status_code == 409
    error = response.json()["error"]
    assert (error["code"], error["customer_id"], error["merged_into"]) == (
        "customer_merged",
        duplicate.pk,
        survivor.pk,
    )


def test_an_unknown_store_is_a_field_error(api, tiers):
    response = calculate(api, {"store": "nowhere", "lines": [SOFA]})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "cart_invalid"
    assert [item["code"] for item in error["fields"]["store"]] == ["unknown_store"]
    assert set(error["fields"]) == {"store"}


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        # The calculator's rules
        ({"sku": ""}, "lines.0.sku", "required"),
        ({"quantity": "0"}, "lines.0.quantity", "not_positive"),
        ({"quantity": "-1"}, "lines.0.quantity", "not_positive"),
        ({"price": "-0.01"}, "lines.0.price", "negative"),
        ({"discount_percent": "100"}, "lines.0.discount_percent", "out_of_range"),
        ({"discount_percent": "-5"}, "lines.0.discount_percent", "out_of_range"),
        # The shape of the request
        ({"sku": None}, "lines.0.sku", "null"),
        ({"quantity": "two"}, "lines.0.quantity", "invalid"),
        ({"quantity": "1.0001"}, "lines.0.quantity", "max_decimal_places"),
        ({"price": "1e20"}, "lines.0.price", "max_digits"),
        ({"operation_type": "gift"}, "lines.0.operation_type", "invalid_choice"),
        ({"category": "not a code"}, "lines.0.category", "invalid"),
        ({"new_arrival": "perhaps"}, "lines.0.new_arrival", "invalid"),
    ],
)
def test_a_bad_line_is_cart_invalid_naming_the_line_and_field(api, tiers, change, field, code):
    lines = [SOFA, {**CHAIRS, **change}]
    field = field.replace("lines.0", "lines.1")

    response = calculate(api, {"lines": lines})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "cart_invalid"
    assert {key: [item["code"] for item in items] for key, items in error["fields"].items()} == {field: [code]}


@pytest.mark.parametrize(
    ("cart", "field", "code"),
    [
        ({"lines": []}, "lines", "empty"),
        ({"lines": [SOFA] * (MAX_LINES + 1)}, "lines", "too_many"),
        ({}, "lines", "required"),
        ({"lines": "SOFA-1"}, "lines", "not_a_list"),
        ({"lines": [{"quantity": "1", "price": "1"}]}, "lines.0.sku", "required"),
        ({"lines": [SOFA], "redeem": "-1"}, "redeem", "min_value"),
        ({"lines": [SOFA], "at": "yesterday"}, "at", "invalid"),
        ({"lines": [SOFA], "customer_id": "me"}, "customer_id", "invalid"),
    ],
)
def test_a_bad_cart_is_cart_invalid_naming_the_field(api, tiers, cart, field, code):
    response = calculate(api, cart)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "cart_invalid"
    assert {key: [item["code"] for item in items] for key, items in error["fields"].items()} == {field: [code]}


def test_every_bad_line_is_named_at_once(api, tiers):
    lines = [{**SOFA, "quantity": "0"}, CHAIRS, {**SOFA, "price": "-1", "discount_percent": "100"}]

    fields = calculate(api, {"lines": lines}).json()["error"]["fields"]

    assert set(fields) == {"lines.0.quantity", "lines.2.price", "lines.2.discount_percent"}


def test_a_channel_without_the_scope_is_refused(channel_client, tiers):
    reader = channel_client(ChannelFactory(scopes=[Scope.CUSTOMERS_READ, Scope.POINTS_READ]))

    response = calculate(reader, {"lines": [SOFA]})

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "missing_scope"


def test_unauthenticated_is_refused(tiers):
    response = calculate(APIClient(), {"lines": [SOFA]})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_a_calculation_as_of_a_past_moment_uses_the_rules_then_in_force(api, tiers):
    customer = CustomerFactory()
    yesterday = timezone.now() - timedelta(days=1)
    old = EarningRuleFactory(name="Old 3 %", rate_percent=3, valid_from=EPOCH, valid_until=yesterday)
    new = EarningRuleFactory(name="New 15 %", rate_percent=15, valid_from=yesterday)
    two_days_ago = timezone.now() - timedelta(days=2)

    then = calculate(api, {"customer_id": customer.pk, "at": two_days_ago.isoformat(), "lines": [SOFA]}).json()
    now = calculate(api, {"customer_id": customer.pk, "lines": [SOFA]}).json()

    assert then["at"] == two_days_ago.astimezone(timezone.get_current_timezone()).isoformat()
    assert (then["lines"][0]["earn_points"], then["lines"][0]["earning"][0]["rule"]["id"]) == ("300.00", old.pk)
    assert (now["lines"][0]["earn_points"], now["lines"][0]["earning"][0]["rule"]["id"]) == ("1500.00", new.pk)


def test_a_tier_cap_changed_since_is_applied_as_it_was(api, tiers):
    customer = gold_customer("100000")
    before_the_change = timezone.now()
    gold = tiers["gold"]
    gold.max_redemption_percent = Decimal("40")
    gold.save()

    then = calculate(api, {"customer_id": customer.pk, "at": before_the_change.isoformat(), "lines": [SOFA]})
    now = calculate(api, {"customer_id": customer.pk, "lines": [SOFA]})

    assert then.json()["lines"][0]["max_redeemable"] == "2500.00"
    assert now.json()["lines"][0]["max_redeemable"] == "4000.00"


def test_explanations_and_errors_speak_the_requests_language(api, tiers):
    basic = tiers["basic"]
    with translation.override("ru"):
        russian_rate = explain.tier_rate(basic, Decimal("5")).text
        russian_invalid_number = str(serializers.DecimalField.default_error_messages["invalid"])
    english_invalid_number = str(serializers.DecimalField.default_error_messages["invalid"])
    assert russian_invalid_number != english_invalid_number  # DRF ships Russian

    in_russian = calculate(api, {"lines": [SOFA]}, HTTP_ACCEPT_LANGUAGE="ru").json()
    in_english = calculate(api, {"lines": [SOFA]}, HTTP_ACCEPT_LANGUAGE="en").json()
    refused = calculate(api, {"lines": [{**SOFA, "quantity": "x"}]}, HTTP_ACCEPT_LANGUAGE="ru").json()

    assert in_russian["lines"][0]["earning"][0]["text"] == russian_rate
    assert in_english["lines"][0]["earning"][0]["text"] == "5% — the earning rate of the Basic tier"
    assert refused["error"]["fields"]["lines.0.quantity"][0]["message"] == russian_invalid_number


def _twenty_lines() -> list[dict]:
    sofas = CategoryFactory(code="sofas")
    for index in range(10):
        ProductFactory(sku=f"KNOWN-{index}", category=sofas, excluded_from_redemption=index == 0)
    EarningRuleFactory(categories=[sofas], rate_percent=8)
    RedemptionRuleFactory(discount_from=10, discount_to=30, kind="balance_share", percent=Decimal("45"))
    PromotionFactory(channel_kinds=[Channel.Kind.SITE])
    known = [
        {"sku": f"KNOWN-{index}", "quantity": "1", "price": "1000", "discount_percent": "15"} for index in range(10)
    ]
    unknown = [{"sku": f"NEW-{index}", "quantity": "2", "price": "500", "category": "sofas"} for index in range(10)]
    return known + unknown


def test_a_twenty_line_cart_takes_a_bounded_number_of_queries(api, tiers, django_assert_max_num_queries):
    customer = gold_customer("100000")
    cart = {"customer_id": customer.pk, "store": StoreFactory().code, "redeem": "100", "lines": _twenty_lines()}

    # The key (and its last use, recorded at most once a minute); the customer with the store and the customer's
    # state, the catalogue and, once per rules version, 13 to load the rulebook. Whatever the number of lines.
    with django_assert_max_num_queries(17):
        first = calculate(api, cart)
    with django_assert_max_num_queries(4):
        second = calculate(api, cart)

    assert first.status_code == second.status_code == 200
    assert len(second.json()["lines"]) == 20
    assert second.json()["lines"][0]["earning"][0]["code"] == "earning_rule"


@pytest.mark.parametrize("member", [True, False])
def test_the_answer_is_rendered_exactly_as_the_documented_serializer_renders_it(tiers, member):
    customer = gold_customer("3000") if member else None
    sofas = CategoryFactory(code="sofas")
    ProductFactory(sku="SOFA-1", category=sofas)
    EarningRuleFactory(categories=[sofas], rate_percent=Decimal("7.5"))
    RedemptionRuleFactory(discount_from=10, kind="balance_share", percent=Decimal("33.33"))
    PromotionFactory(multiplier=Decimal("1.5"))
    lines = [
        CartLine(sku="SOFA-1", quantity=Decimal("1.5"), price=Decimal("9999.99"), discount_percent=Decimal("12.5")),
        CartLine(sku="X", quantity=Decimal("3"), price=Decimal("333.33"), category="sofas", excluded_from_earning=True),
    ]

    result = cart_calculate(customer=customer, lines=lines, redeem=Decimal("100") if member else None)

    assert cart_answer(result) == CartOutput(result).data


def test_a_known_customer_and_store_cost_one_query_with_the_customers_state(api, tiers):
    customer = gold_customer("1000")
    cart = {"customer_id": customer.pk, "store": StoreFactory().code, "lines": [SOFA]}
    calculate(api, cart)  # the rulebook, the key's last use

    with CaptureQueriesContext(connection) as captured:
        response = calculate(api, cart)

    assert response.status_code == 200
    assert response.json()["tier"] == "gold"
    # Besides the API key's (not the calculator's, and cached where a cache is): the customer with the store and
    # the customer's state, and the catalogue.
    calculation = [query["sql"] for query in captured if "integrations_apikey" not in query["sql"]]
    assert len(calculation) == 2
    assert "customers_customer" in calculation[0]
    assert "integrations_store" in calculation[0]
    assert "catalog_product" in calculation[1]


def test_an_unknown_store_is_answered_before_an_unknown_customer(api, tiers):
    response = calculate(api, {"customer_id": 987654321, "store": "nowhere", "lines": [SOFA]})

    assert response.status_code == 400
    assert [item["code"] for item in response.json()["error"]["fields"]["store"]] == ["unknown_store"]


def test_a_store_by_code_selects_the_store_specific_rules_whether_or_not_the_request_is_plain(api, tiers):
    store = StoreFactory()
    PromotionFactory(stores=[store], multiplier=Decimal("3"))
    plain = {"store": store.code, "lines": [SOFA]}
    # A number as a JSON float, an SKU with spaces to trim: the serializer reads this one.
    other = {"store": store.code, "lines": [{**SOFA, "sku": " SOFA-1 ", "quantity": 1.0}]}

    answers = [calculate(api, cart).json() for cart in (plain, other)]

    assert [answer["totals"]["earn_points"] for answer in answers] == ["1500.00", "1500.00"]
    assert answers[0]["lines"] == answers[1]["lines"]
