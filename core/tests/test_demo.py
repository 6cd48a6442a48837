"""The demo data of ``make run``: believable, made through the services, and loaded twice it changes nothing."""

import re
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db.models import Count

from catalog.models import Product
from core.demo import (
    ANONYMISE_REASON,
    DEMO_SITE_API_KEY,
    MERGE_REASON,
    SITE,
    demo_data_load,
)
from customers.models import Consent, ConsentEvent, Customer, CustomerChange, ExternalId
from customers.selectors import customer_identify
from integrations.models import ApiKey, Channel, Store
from integrations.services.channels import api_key_hash
from points.models import Account, Entry, Lot
from points.selectors import points_balance
from points.services import points_reconcile
from programmes.calculator import CartLine, cart_calculate
from programmes.models import EarningRule, Promotion, RedemptionRule, RuleSet

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]

MODELS = [
    get_user_model(),
    Channel,
    ApiKey,
    Store,
    Customer,
    ExternalId,
    Consent,
    ConsentEvent,
    CustomerChange,
    Account,
    Lot,
    Entry,
    Product,
    RuleSet,
    EarningRule,
    RedemptionRule,
    Promotion,
]


CYRILLIC_WORD = "[\\u0410-\\u042f\\u0401][\\u0430-\\u044f\\u0451]+"  # Иванова
LATIN_WORD = "[A-Z][a-z]+"


def row_counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


def test_loading_twice_creates_everything_once():
    first = demo_data_load()
    counts = row_counts()

    second = demo_data_load()

    # admin, channels, API key, stores, catalogue, two rule sets, a promotion, customers, two orders, four staff
    # users and the complaints budget
    assert len(first.created) == 1 + 3 + 1 + 3 + 1 + 2 + 1 + 32 + 2 + 4 + 1
    assert second.created == []
    assert row_counts() == counts
    assert points_reconcile() == []


def test_customers_cover_every_membership_state_and_kind():
    demo_data_load()

    active = Customer.objects.filter(merged_into__isnull=True)
    by_membership = dict(active.values_list("membership").annotate(n=Count("pk")))

    assert by_membership == {"member": 23, "non_member": 6, "blocked": 1, "anonymised": 1}
    assert active.filter(kind=Customer.Kind.B2B).count() == 4
    assert set(active.filter(kind=Customer.Kind.B2B).values_list("b2b_role", flat=True)) == {
        "designer",
        "horeca",
        "developer",
    }
    assert Customer.objects.filter(merged_into__isnull=False).count() == 1
    assert set(Store.objects.values_list("code", flat=True)) == {"msk-khimki", "spb-nevsky", "ekb-center"}
    assert ApiKey.objects.filter(key_hash=api_key_hash(DEMO_SITE_API_KEY), channel__code=SITE).exists()


def test_names_come_in_both_languages_styles():
    demo_data_load()

    names = list(Customer.objects.exclude(name="").values_list("name", flat=True))

    assert "Иванова Анна Сергеевна" in names  # surname, name, patronymic
    assert "Emily Clarke" in names
    assert any(re.fullmatch(f"{CYRILLIC_WORD} {CYRILLIC_WORD}", name) for name in names)  # surname and name only
    assert sum(bool(re.fullmatch(f"{LATIN_WORD} {LATIN_WORD}", name)) for name in names) >= 4


def test_readme_customer_is_a_member_with_points_a_card_and_a_validated_email():
    demo_data_load()

    customer = customer_identify(phone="8 (916) 123-45-67")
    balance = points_balance(customer=customer)

    assert customer.membership == Customer.Membership.MEMBER
    assert customer.card_number == "2600000000015"
    assert customer.email_validated
    assert customer.external_ids.get().external_id == "site-10001"
    # welcome 500 (first order only) + purchase 3200 - 1000 spent + validated email 500
    assert balance.available == Decimal("3200.00")
    assert {c.channel: c.granted for c in Consent.objects.filter(customer=customer)} == {"sms": True, "email": True}


def test_non_members_points_are_for_members_only_and_joining_lifted_them():
    demo_data_load()

    receipt_only = Customer.objects.get(phone="+79854441122")
    joined_after = Customer.objects.get(phone="+79857776655")

    assert receipt_only.membership == Customer.Membership.NON_MEMBER
    assert receipt_only.name == ""
    assert list(Lot.objects.filter(account__customer=receipt_only).values_list("restriction", flat=True)) == [
        Lot.Restriction.MEMBERS_ONLY
    ]
    assert Entry.objects.filter(operation_key=f"join:{joined_after.pk}:unrestrict").count() == 1
    assert not Lot.objects.filter(account__customer=joined_after, restriction=Lot.Restriction.MEMBERS_ONLY).exists()


def test_the_duplicate_is_a_redirect_and_its_points_and_card_moved():
    demo_data_load()

    duplicate = Customer.objects.get(phone="+79037003344")
    survivor = Customer.objects.get(phone="+79057003344", merged_into__isnull=True)

    assert duplicate.merged_into == survivor
    assert customer_identify(phone="+79037003344") == survivor
    assert survivor.card_number == "2600000000060"
    assert Lot.objects.filter(account__customer=duplicate, state=Lot.State.MOVED).count() == 1
    assert Entry.objects.filter(operation_key=f"merge:{duplicate.pk}:{survivor.pk}", kind="move_in").count() == 1
    # welcome 500 (first order only) + 560 own + 1500 moved from the duplicate, no longer members-only
    assert points_balance(customer=survivor).available == Decimal("2560.00")
    assert survivor.changes.filter(action="merge", reason=MERGE_REASON).exists()


def test_blocked_and_anonymised_customers_were_changed_by_the_demo_admin():
    demo_data_load()

    blocked = Customer.objects.get(membership=Customer.Membership.BLOCKED)
    anonymised = Customer.objects.get(membership=Customer.Membership.ANONYMISED)
    block = blocked.changes.get(action="block")

    assert block.actor_user.username == "admin"
    assert block.reason
    assert points_balance(customer=blocked).available > 0  # blocking keeps the points
    assert (anonymised.phone, anonymised.name, anonymised.email) == (None, "", "")
    assert anonymised.changes.get(action="anonymise").reason == ANONYMISE_REASON
    assert not Consent.objects.filter(customer=anonymised, granted=True).exists()
    assert Entry.objects.filter(account__customer=anonymised).exists()  # the ledger stays


def test_demo_rules_cap_new_arrivals_and_keep_delivery_out_while_the_old_matrix_stays_inactive():
    demo_data_load()
    member = customer_identify(phone="+79161234567")
    app = Channel(kind=Channel.Kind.MOBILE_APP)
    lines = [
        CartLine(sku="SOFA-BERGEN", quantity=Decimal(1), price=Decimal(100000)),
        CartLine(sku="DELIVERY", quantity=Decimal(1), price=Decimal(2500)),
        CartLine(sku="RING-585-01", quantity=Decimal(1), price=Decimal(10000), discount_percent=Decimal(60)),
    ]

    result = cart_calculate(customer=member, lines=lines, channel=app, spendable_balance=Decimal(1_000_000))

    new_arrival, delivery, discounted_ring = result.lines
    assert new_arrival.redemption_limit.rule.name == "New arrivals: up to 10% in points"
    assert new_arrival.max_redeemable == 10000
    assert (delivery.max_redeemable, delivery.earn_points) == (0, 0)
    assert delivery.earning[0].code == "earning_rule_no_points"
    assert discounted_ring.redemption_limit.code == "tier_cap"  # the 60 % bracket's prohibition is not active
    assert not RuleSet.objects.get(code="discount-brackets-2021").is_active
