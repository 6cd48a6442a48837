"""The rule admin: rules added, edited, ended and replaced through the services; the page of a rule in force;
conflicts reported; the "try it" cart; permissions; changelists in a bounded number of queries."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone

from catalog.services import catalog_upsert
from customers.tests.factories import CustomerFactory, StoreFactory
from points.services import points_accrue
from programmes.models import EarningRule, Promotion, RuleSet, Tier
from programmes.tests.factories import EarningRuleFactory, PromotionFactory, RedemptionRuleFactory, RuleSetFactory

pytestmark = pytest.mark.django_db

D = Decimal
EARNING = "/admin/programmes/earningrule/"
REDEMPTION = "/admin/programmes/redemptionrule/"
PROMOTIONS = "/admin/programmes/promotion/"
RULE_SETS = "/admin/programmes/ruleset/"
TRY = "/admin/programmes/earningrule/try/"
CONFLICTS = "/admin/programmes/earningrule/conflicts/"


def texts(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def _moment(value) -> dict[str, str]:
    local = timezone.localtime(value)
    return {"0": local.strftime("%Y-%m-%d"), "1": local.strftime("%H:%M:%S")}


def _split(name: str, value) -> dict[str, str]:
    if value is None:
        return {f"{name}_0": "", f"{name}_1": ""}
    return {f"{name}_{part}": text for part, text in _moment(value).items()}


def earning_form(rule_set, **values) -> dict:
    """The add/change form of an earning rule as a browser posts it."""
    data = {
        "rule_set": rule_set.pk,
        "name": "App 8%",
        "priority": 0,
        "kind": "rate",
        "rate_percent": "8",
        "tiers": [],
        "channel_kinds": [],
        "stores": [],
        "categories": [],
        "new_arrival": "unknown",
        "operation_types": [],
        "note": "",
        "valid_from": None,
        "valid_until": None,
        **values,
    }
    for name in ("valid_from", "valid_until"):
        data.update(_split(name, data.pop(name)))
    return data


def staff_client(*codenames: str) -> Client:
    user = User.objects.create_user(username=f"staff-{'-'.join(codenames) or 'none'}", password="x", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="programmes", codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def rule_set(retail) -> RuleSet:
    return RuleSetFactory(programme=retail, code="main", name="Programme rules")


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def catalogue(db):
    catalog_upsert(
        categories=[
            {"code": "furniture", "name": "Furniture"},
            {"code": "sofas", "name": "Sofas", "parent": "furniture"},
            {"code": "services", "name": "Delivery"},
        ],
        products=[
            {"sku": "SOFA-1", "name": "Sofa Oslo", "category": "sofas"},
            {
                "sku": "NEW-SOFA",
                "name": "Sofa Bergen",
                "category": "sofas",
                "new_arrival": True,
                "arrival_date": "2026-01-01",
            },
            {"sku": "DELIVERY", "name": "Delivery", "category": "services"},
        ],
    )


# --- pages ---------------------------------------------------------------------------------------------------------


def test_the_rule_pages_render(admin_client, rule_set, tiers, now):
    earning = EarningRuleFactory(rule_set=rule_set, tiers=[tiers["gold"]], valid_from=now - timedelta(days=1))
    scheduled = EarningRuleFactory(rule_set=rule_set, valid_from=now + timedelta(days=1))
    redemption = RedemptionRuleFactory(rule_set=rule_set, discount_from=D("20"), discount_to=D("30"))
    promotion = PromotionFactory()
    pages = [
        EARNING,
        f"{EARNING}add/",
        f"{EARNING}{earning.pk}/change/",
        f"{EARNING}{earning.pk}/replace/",
        f"{EARNING}{scheduled.pk}/change/",
        REDEMPTION,
        f"{REDEMPTION}add/",
        f"{REDEMPTION}{redemption.pk}/change/",
        f"{REDEMPTION}{redemption.pk}/replace/",
        PROMOTIONS,
        f"{PROMOTIONS}add/",
        f"{PROMOTIONS}{promotion.pk}/change/",
        f"{PROMOTIONS}{promotion.pk}/replace/",
        RULE_SETS,
        f"{RULE_SETS}add/",
        f"{RULE_SETS}{rule_set.pk}/change/",
        TRY,
        CONFLICTS,
    ]

    statuses = {page: admin_client.get(page).status_code for page in pages}

    assert statuses == dict.fromkeys(pages, 200)


def test_the_changelists_show_the_rules_in_words(admin_client, rule_set, tiers, catalogue, now):
    EarningRuleFactory(
        rule_set=rule_set,
        name="App for Gold",
        rate_percent=D("8"),
        tiers=[tiers["gold"]],
        channel_kinds=["mobile_app"],
        operation_types=["loan_interest"],
        priority=4,
        valid_from=now - timedelta(days=1),
    )
    RedemptionRuleFactory(
        rule_set=rule_set, name="Matrix 20", discount_from=D("20"), discount_to=D("30"), kind="balance_share"
    )

    earning = admin_client.get(EARNING).content.decode()
    redemption = admin_client.get(REDEMPTION).content.decode()

    assert "tiers: Gold; channels: Mobile app; operations: loan interest payment" in earning
    assert "8%" in earning
    assert "(in force)" in earning
    assert "20% to below 30%" in redemption
    assert "up to 10% of the balance" in redemption
    assert f'href="{CONFLICTS}"' in earning
    assert f'href="{TRY}"' in redemption


@pytest.mark.parametrize(("url", "factory"), [(EARNING, "earning"), (REDEMPTION, "redemption"), (PROMOTIONS, "promo")])
def test_the_changelists_take_a_bounded_number_of_queries(
    admin_client, rule_set, tiers, catalogue, django_assert_max_num_queries, url, factory
):
    store = StoreFactory()
    for index in range(30):
        conditions = {"tiers": [tiers["gold"], tiers["silver"]], "stores": [store], "channel_kinds": ["site"]}
        if factory == "earning":
            EarningRuleFactory(rule_set=rule_set, priority=index, **conditions)
        elif factory == "redemption":
            RedemptionRuleFactory(rule_set=rule_set, **conditions)
        else:
            PromotionFactory(**conditions)

    with django_assert_max_num_queries(10):  # session, user, count, rules, 3 prefetches, filter choices
        response = admin_client.get(url)

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 30


def test_the_rule_set_pages_take_a_bounded_number_of_queries(
    admin_client, rule_set, tiers, django_assert_max_num_queries
):
    for index in range(20):
        EarningRuleFactory(rule_set=rule_set, tiers=[tiers["gold"]], priority=index)
        RedemptionRuleFactory(rule_set=rule_set, tiers=[tiers["gold"]])

    with django_assert_max_num_queries(7):
        listing = admin_client.get(RULE_SETS)
    with django_assert_max_num_queries(15):
        page = admin_client.get(f"{RULE_SETS}{rule_set.pk}/change/")

    assert listing.status_code == page.status_code == 200
    assert page.content.decode().count("tiers: Gold") == 40


def test_the_in_force_filter(admin_client, rule_set, now):
    in_force = EarningRuleFactory(rule_set=rule_set, valid_from=now - timedelta(days=1))
    EarningRuleFactory(rule_set=rule_set, valid_from=now + timedelta(days=1))
    EarningRuleFactory(rule_set=rule_set, valid_from=now - timedelta(days=9), valid_until=now - timedelta(days=1))
    EarningRuleFactory(rule_set=RuleSetFactory(is_active=False), valid_from=now - timedelta(days=1))

    response = admin_client.get(EARNING, {"in_force": "yes"})

    assert [rule.pk for rule in response.context["cl"].result_list] == [in_force.pk]
    assert len(admin_client.get(EARNING, {"in_force": "no"}).context["cl"].result_list) == 3


# --- add and edit --------------------------------------------------------------------------------------------------


def test_a_rule_is_added_from_now_with_its_conditions(admin_client, rule_set, tiers, catalogue):
    store = StoreFactory()
    sofas = catalogue_category("sofas")
    before = timezone.now()

    response = admin_client.post(
        f"{EARNING}add/",
        earning_form(
            rule_set,
            tiers=[tiers["basic"].pk, tiers["silver"].pk],
            channel_kinds=["site", "mobile_app"],
            operation_types=["purchase"],
            stores=[store.pk],
            categories=[sofas.pk],
            new_arrival="false",
        ),
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    rule = EarningRule.objects.get()
    assert before <= rule.valid_from <= timezone.now()
    assert (rule.rate_percent, rule.channel_kinds, rule.operation_types, rule.new_arrival) == (
        D("8.00"),
        ["site", "mobile_app"],  # in the order of the choices
        ["purchase"],
        False,
    )
    assert set(rule.tiers.all()) == {tiers["basic"], tiers["silver"]}
    assert (list(rule.stores.all()), list(rule.categories.all())) == ([store], [sofas])


def catalogue_category(code: str):
    from catalog.models import Category

    return Category.objects.get(code=code)


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"channel_kinds": ["fax"]}, "channel_kinds"),
        ({"operation_types": ["gambling"]}, "operation_types"),
        ({"kind": "rate", "rate_percent": ""}, "rate_percent"),
        ({"valid_from": "past"}, "valid_from"),
        ({"valid_from": "future", "valid_until": "now"}, "valid_until"),
        ({"tiers": "b2b"}, "tiers"),
    ],
)
def test_an_invalid_rule_is_shown_on_the_form(admin_client, rule_set, now, values, field):
    values = dict(values)
    replacements = {
        "past": now - timedelta(days=1),
        "future": now + timedelta(days=2),
        "now": now + timedelta(days=1),
    }
    for key in ("valid_from", "valid_until"):
        if key in values:
            values[key] = replacements[values[key]]
    if values.get("tiers") == "b2b":
        values["tiers"] = [Tier.objects.get(programme__code="b2b").pk]

    response = admin_client.post(f"{EARNING}add/", earning_form(rule_set, **values))

    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not EarningRule.objects.exists()


def test_a_model_constraint_is_shown_on_the_form(admin_client, rule_set):
    response = admin_client.post(f"{EARNING}add/", earning_form(rule_set, kind="no_earning", rate_percent="5"))

    assert response.status_code == 200
    assert response.context["adminform"].form.non_field_errors() == [
        "A rate rule needs a percentage between 0 and 100; a no-earning rule has none."
    ]
    assert not EarningRule.objects.exists()


def test_a_start_typed_as_now_means_when_saved(admin_client, rule_set):
    typed = timezone.now() - timedelta(minutes=2)  # "Now" clicked, then the form filled in

    response = admin_client.post(f"{EARNING}add/", earning_form(rule_set, valid_from=typed))

    assert response.status_code == 302
    assert EarningRule.objects.get().valid_from > typed


def test_a_rule_not_yet_in_force_is_edited_freely(admin_client, rule_set, tiers, now):
    start = now + timedelta(days=3)
    rule = EarningRuleFactory(rule_set=rule_set, valid_from=start, rate_percent=D("5"))

    response = admin_client.post(
        f"{EARNING}{rule.pk}/change/",
        earning_form(rule_set, name="Gold 9%", rate_percent="9", tiers=[tiers["gold"].pk], valid_from=start),
    )

    assert response.status_code == 302
    rule.refresh_from_db()
    assert (rule.name, rule.rate_percent, list(rule.tiers.all())) == ("Gold 9%", D("9.00"), [tiers["gold"]])


def test_a_rule_in_force_shows_its_conditions_and_effect_read_only(admin_client, rule_set, tiers, now):
    rule = EarningRuleFactory(
        rule_set=rule_set, valid_from=now - timedelta(days=1), channel_kinds=["site"], tiers=[tiers["gold"]]
    )

    response = admin_client.get(f"{EARNING}{rule.pk}/change/")

    form = response.context["adminform"].form
    assert sorted(form.fields) == ["name", "note", "valid_until"]
    page = response.content.decode()
    assert "Web site" in page  # the channel's label, read-only
    assert "Replace from now" in page
    assert f"{EARNING}{rule.pk}/replace/" in page


def test_a_post_cannot_change_the_effect_of_a_rule_in_force(admin_client, rule_set, now):
    rule = EarningRuleFactory(rule_set=rule_set, valid_from=now - timedelta(days=1), rate_percent=D("5"))

    response = admin_client.post(
        f"{EARNING}{rule.pk}/change/",
        earning_form(rule_set, name="Renamed", rate_percent="50", channel_kinds=["erp"], note="n"),
    )

    assert response.status_code == 302
    rule.refresh_from_db()
    assert (rule.name, rule.note, rule.rate_percent, rule.channel_kinds) == ("Renamed", "n", D("5.00"), [])


def test_a_rule_in_force_is_ended_but_not_before_now(admin_client, rule_set, now):
    rule = EarningRuleFactory(rule_set=rule_set, name="Rule", valid_from=now - timedelta(days=10))
    end = now + timedelta(days=1)

    refused = admin_client.post(
        f"{EARNING}{rule.pk}/change/", {"name": "Rule", "note": "", **_split("valid_until", now - timedelta(days=1))}
    )
    ended = admin_client.post(f"{EARNING}{rule.pk}/change/", {"name": "Rule", "note": "", **_split("valid_until", end)})

    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors["valid_until"] == [
        "A rule in force cannot end in the past: end it now or later."
    ]
    assert ended.status_code == 302
    rule.refresh_from_db()
    assert rule.valid_until == end.replace(microsecond=0)


def test_the_end_now_action(admin_client, rule_set, now):
    in_force = EarningRuleFactory(rule_set=rule_set, name="In force", valid_from=now - timedelta(days=1))
    scheduled = EarningRuleFactory(rule_set=rule_set, name="Scheduled", valid_from=now + timedelta(days=1))

    response = admin_client.post(
        EARNING, {"action": "end_now", "_selected_action": [in_force.pk, scheduled.pk]}, follow=True
    )

    in_force.refresh_from_db()
    scheduled.refresh_from_db()
    assert now < in_force.valid_until <= timezone.now()
    assert scheduled.valid_until is None
    assert texts(response) == ["1 rule ended: In force.", "Not ended (not in force): Scheduled."]


def test_only_a_rule_not_yet_in_force_is_deleted(admin_client, rule_set, now):
    in_force = EarningRuleFactory(rule_set=rule_set, valid_from=now - timedelta(days=1))
    scheduled = EarningRuleFactory(rule_set=rule_set, valid_from=now + timedelta(days=1))

    refused = admin_client.post(f"{EARNING}{in_force.pk}/delete/", {"post": "yes"})
    deleted = admin_client.post(f"{EARNING}{scheduled.pk}/delete/", {"post": "yes"})

    assert (refused.status_code, deleted.status_code) == (403, 302)
    assert list(EarningRule.objects.values_list("pk", flat=True)) == [in_force.pk]
    actions = [name for name, _label in admin_client.get(EARNING).context["action_form"].fields["action"].choices]
    assert actions == ["", "end_now"]


# --- replace from now ----------------------------------------------------------------------------------------------


def test_replacing_ends_the_rule_and_starts_one_with_the_new_values(admin_client, rule_set, tiers, catalogue, now):
    old = EarningRuleFactory(
        rule_set=rule_set,
        name="App",
        rate_percent=D("8"),
        valid_from=now - timedelta(days=30),
        channel_kinds=["mobile_app"],
        tiers=[tiers["basic"]],
        categories=[catalogue_category("sofas")],
    )
    page = admin_client.get(f"{EARNING}{old.pk}/replace/")
    form = page.context["form"]
    assert (form["rate_percent"].value(), form["channel_kinds"].value()) == (D("8.00"), ["mobile_app"])

    response = admin_client.post(
        f"{EARNING}{old.pk}/replace/",
        {
            "name": "App 9%",
            "priority": 0,
            "kind": "rate",
            "rate_percent": "9",
            "tiers": [tiers["basic"].pk],
            "channel_kinds": ["mobile_app"],
            "categories": [catalogue_category("sofas").pk],
            "stores": [],
            "new_arrival": "unknown",
            "operation_types": [],
            "note": "",
            **_split("valid_until", None),
        },
    )

    new = EarningRule.objects.exclude(pk=old.pk).get()
    old.refresh_from_db()
    assert response.status_code == 302
    assert response["Location"] == f"{EARNING}{new.pk}/change/"
    assert old.valid_until == new.valid_from
    assert now < new.valid_from <= timezone.now()
    assert (new.name, new.rate_percent, new.channel_kinds, new.rule_set) == (
        "App 9%",
        D("9.00"),
        ["mobile_app"],
        rule_set,
    )
    assert (list(new.tiers.all()), list(new.categories.values_list("code", flat=True))) == ([tiers["basic"]], ["sofas"])
    assert (old.name, old.rate_percent) == ("App", D("8.00"))


def test_a_replacement_without_changes_is_refused(admin_client, rule_set, now):
    old = EarningRuleFactory(rule_set=rule_set, name="Same", rate_percent=D("8"), valid_from=now - timedelta(days=1))
    page = admin_client.get(f"{EARNING}{old.pk}/replace/")
    data = {
        name: field.value()
        for name, field in ((name, page.context["form"][name]) for name in page.context["form"].fields)
    }
    data = {key: ("" if value is None else value) for key, value in data.items()}
    data.update(_split("valid_until", None))
    data["new_arrival"] = "unknown"

    response = admin_client.post(f"{EARNING}{old.pk}/replace/", data)

    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [
        "Nothing was changed: the replacement would be the same rule."
    ]
    assert EarningRule.objects.count() == 1


def test_a_rule_not_in_force_is_not_replaced(admin_client, rule_set, now):
    scheduled = EarningRuleFactory(rule_set=rule_set, valid_from=now + timedelta(days=1))

    response = admin_client.get(f"{EARNING}{scheduled.pk}/replace/", follow=True)

    assert texts(response) == [
        "Only a rule in force can be replaced: a rule not yet in force is edited, an ended one is kept."
    ]
    assert EarningRule.objects.count() == 1


def test_a_promotion_is_replaced(admin_client, now):
    promotion = PromotionFactory(
        name="Double", multiplier=D("2"), valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=6)
    )
    end = now + timedelta(days=6)

    response = admin_client.post(
        f"{PROMOTIONS}{promotion.pk}/replace/",
        {
            "name": "Triple",
            "is_active": "on",
            "multiplier": "3",
            "tiers": [],
            "channel_kinds": [],
            "stores": [],
            "categories": [],
            "new_arrival": "unknown",
            "operation_types": [],
            "note": "",
            **_split("valid_until", end),
        },
    )

    assert response.status_code == 302
    triple = Promotion.objects.get(name="Triple")
    promotion.refresh_from_db()
    assert (triple.multiplier, promotion.valid_until) == (D("3.00"), triple.valid_from)


# --- conflicts -----------------------------------------------------------------------------------------------------


def test_saving_a_conflicting_rule_warns_and_saves(admin_client, rule_set, now):
    EarningRuleFactory(rule_set=rule_set, name="Site 5%", rate_percent=D("5"), valid_from=now - timedelta(days=1))

    response = admin_client.post(f"{EARNING}add/", earning_form(rule_set, name="All 8%"), follow=True)

    assert EarningRule.objects.filter(name="All 8%").exists()
    [warning] = [text for text in texts(response) if text.startswith("Earning rules")]
    assert "“Site 5%” (5%)" in warning
    assert "“All 8%” (8%)" in warning


def test_saving_a_rule_without_conflicts_does_not_warn(admin_client, rule_set, now):
    EarningRuleFactory(rule_set=rule_set, rate_percent=D("5"), priority=5, valid_from=now - timedelta(days=1))

    response = admin_client.post(f"{EARNING}add/", earning_form(rule_set), follow=True)

    assert [text for text in texts(response) if "Earning rules" in text] == []


def test_the_conflicts_page_lists_each_programme(admin_client, rule_set, now, django_assert_max_num_queries):
    EarningRuleFactory(rule_set=rule_set, name="Five", rate_percent=D("5"), valid_from=now - timedelta(days=1))
    EarningRuleFactory(rule_set=rule_set, name="Eight", rate_percent=D("8"), valid_from=now - timedelta(days=1))
    PromotionFactory(name="Double")
    PromotionFactory(name="Also double")

    with django_assert_max_num_queries(3 + 2 * 12):  # session, user, programmes; 12 a programme
        response = admin_client.get(CONFLICTS)

    page = response.content.decode()
    by_code = {item["programme"].code: item for item in response.context["programmes"]}
    retail, b2b = by_code["retail"], by_code["b2b"]
    assert [row["severity"] for row in retail["conflicts"]] == ["warning", "info"]
    assert b2b["conflicts"] == []
    assert "Earning rules “Five” (5%) and “Eight” (8%) have the same priority 0" in page
    assert "No conflicts." in page


# --- rule sets -----------------------------------------------------------------------------------------------------


def test_rule_sets_are_activated_and_deactivated(admin_client, rule_set):
    response = admin_client.post(RULE_SETS, {"action": "deactivate", "_selected_action": [rule_set.pk]}, follow=True)
    rule_set.refresh_from_db()
    assert rule_set.is_active is False
    assert texts(response)[0] == "Deactivated: Programme rules."

    admin_client.post(RULE_SETS, {"action": "activate", "_selected_action": [rule_set.pk]})
    rule_set.refresh_from_db()
    assert rule_set.is_active is True


def test_a_rule_set_with_rules_in_force_is_not_deleted(admin_client, rule_set, now):
    EarningRuleFactory(rule_set=rule_set, valid_from=now - timedelta(days=1))
    empty = RuleSetFactory()

    refused = admin_client.post(f"{RULE_SETS}{rule_set.pk}/delete/", {"post": "yes"})
    deleted = admin_client.post(f"{RULE_SETS}{empty.pk}/delete/", {"post": "yes"})

    assert (refused.status_code, deleted.status_code) == (403, 302)
    assert list(RuleSet.objects.values_list("pk", flat=True)) == [rule_set.pk]


# --- try it --------------------------------------------------------------------------------------------------------


def try_form(**values) -> dict:
    return {
        "customer": "",
        "channel_kind": "",
        "store": "",
        "moment_0": "",
        "moment_1": "",
        "spendable_balance": "",
        "redeem": "",
        "first_order": "auto",
        "lines": "",
        **values,
    }


@pytest.fixture
def member_with_points(tiers):
    customer = CustomerFactory(phone="+79160000042")
    points_accrue(customer=customer, amount=D("10000"), kind="manual", operation_key="try-it")
    return customer


def test_try_it_shows_each_line_with_the_limiting_rule_and_the_totals(
    admin_client, rule_set, catalogue, member_with_points
):
    RedemptionRuleFactory(rule_set=rule_set, name="New arrivals: up to 10%", new_arrival=True, percent=D("10"))
    forbidden = RedemptionRuleFactory(rule_set=rule_set, name="Delivery: no points", kind="forbidden", percent=None)
    forbidden.categories.set([catalogue_category("services")])
    EarningRuleFactory(
        rule_set=rule_set, name="Delivery earns nothing", kind="no_earning", rate_percent=None
    ).categories.set([catalogue_category("services")])

    response = admin_client.post(
        TRY,
        try_form(
            customer="8 916 000-00-42",
            lines="SOFA-1;1;50000;20\n\nNEW-SOFA;2;30000;0\nDELIVERY;1;1500;0",
        ),
    )

    assert response.status_code == 200
    result = response.context["result"]
    assert result is not None, response.context["form"].errors
    rows = [
        (line.sku, line.amount, line.max_redeemable, line.redemption_limit.text, line.earn_points)
        for line in result.lines
    ]
    assert rows == [
        ("SOFA-1", D("40000.00"), D("8000"), "Up to 20% of the price for the Basic tier", D("2000")),
        (
            "NEW-SOFA",
            D("60000.00"),
            D("6000"),
            "Up to 10% of the price by the rule “New arrivals: up to 10%”",
            D("3000"),
        ),
        ("DELIVERY", D("1500.00"), D("0"), "Points may not be spent by the rule “Delivery: no points”", D("0")),
    ]
    assert (result.spendable_balance, result.max_redeemable, result.earn_points) == (D("10000"), D("10000"), D("5000"))
    page = response.content.decode()
    assert "Up to 10% of the price by the rule “New arrivals: up to 10%”" in page
    assert "No points by the rule “Delivery earns nothing”" in page
    assert "The customer can spend 10000 points" in page  # the cart's maximum is the balance
    assert ">14000<" not in page


def test_try_it_redeems_and_refuses_more_than_the_maximum(admin_client, catalogue, member_with_points):
    allowed = admin_client.post(
        TRY, try_form(customer=str(member_with_points.pk), lines="SOFA-1;1;10000;0", redeem="2000")
    )
    refused = admin_client.post(
        TRY, try_form(customer=f"#{member_with_points.pk}", lines="SOFA-1;1;10000;0", redeem="2001")
    )

    assert (allowed.context["result"].redeem, allowed.context["result"].earn_points) == (D("2000"), D("400"))
    assert refused.status_code == 200
    assert refused.context["result"] is None
    assert refused.context["form"].errors["redeem"] == ["More points than may be spent on this cart. At most 2000."]


def test_try_it_shows_bad_rows(admin_client, catalogue):
    response = admin_client.post(
        TRY,
        try_form(
            lines="SOFA-1;1;100;0\nSOFA-1;two;100;0\n\nSOFA-1;1\n;1;100;0;;barter\nSOFA-1;0;100;0\nSOFA-1;1;100;100"
        ),
    )

    assert response.status_code == 200
    assert response.context["result"] is None
    assert response.context["form"].errors["lines"] == [
        "Row 2: the quantity “two” is not a number.",
        "Row 4: expected 4 to 6 values separated by “;” "
        "(sku;quantity;price;discount_percent[;category;operation_type]), got 2.",
        "Row 5: the SKU is missing.",
        "Row 5: unknown operation type “barter” (purchase, loan_interest, paid_service).",
    ]

    response = admin_client.post(TRY, try_form(lines="SOFA-1;1;100;0\n\nSOFA-1;0;100;0\nSOFA-1;1;100;100"))

    assert response.context["form"].errors["lines"] == [
        "Row 3: The quantity must be above 0.",
        "Row 4: The shelf discount is a percentage from 0 to 99.99.",
    ]


def test_try_it_with_an_unknown_customer(admin_client, catalogue):
    for customer in ("999999", "#999999", "+7 999 000-00-00", "nobody"):
        response = admin_client.post(TRY, try_form(customer=customer, lines="SOFA-1;1;100;0"))

        assert response.context["result"] is None
        assert response.context["form"].errors["customer"] in (
            ["No customer with this id or phone number."],
            ["Enter a customer id or a phone number."],
        )


def test_try_it_anonymous_cart_earns_but_spends_nothing(admin_client, catalogue):
    response = admin_client.post(TRY, try_form(lines="SOFA-1;1;1000;0;;\nINLINE;1;1000;0;sofas;loan_interest"))

    result = response.context["result"]
    assert [(line.max_redeemable, line.earn_points) for line in result.lines] == [(D("0"), D("50")), (D("0"), D("50"))]
    assert result.lines[0].redemption_limit.text == "Points can be spent only by an identified member"


def test_try_it_as_of_a_past_moment_uses_the_rules_of_then(admin_client, rule_set, catalogue, now):
    from core.actors import SYSTEM
    from programmes.services import rule_replace

    rule = EarningRuleFactory(rule_set=rule_set, name="Ten", rate_percent=D("10"), valid_from=now - timedelta(days=30))
    rule_replace(rule=rule, changes={"name": "Three", "rate_percent": D("3")}, actor=SYSTEM, at=now)
    yesterday = now - timedelta(days=1)

    then = admin_client.post(
        TRY, try_form(lines="SOFA-1;1;1000;0", **{f"moment_{k}": v for k, v in _moment(yesterday).items()})
    )
    today = admin_client.post(TRY, try_form(lines="SOFA-1;1;1000;0"))

    assert then.context["result"].lines[0].earning[0].text == "10% by the rule “Ten”"
    assert today.context["result"].lines[0].earning[0].text == "3% by the rule “Three”"


def test_try_it_with_a_balance_override_and_channel(admin_client, rule_set, catalogue, member_with_points):
    EarningRuleFactory(rule_set=rule_set, name="App 8%", rate_percent=D("8"), channel_kinds=["mobile_app"])

    response = admin_client.post(
        TRY,
        try_form(
            customer=str(member_with_points.pk),
            channel_kind="mobile_app",
            spendable_balance="100",
            first_order="no",
            lines="SOFA-1;1;1000;0",
        ),
    )

    result = response.context["result"]
    assert (result.spendable_balance, result.max_redeemable, result.first_order) == (D("100"), D("100"), False)
    assert result.lines[0].earning[0].text == "8% by the rule “App 8%”"


# --- permissions ---------------------------------------------------------------------------------------------------


def test_staff_without_permission_cannot_try_or_see_conflicts_or_rules(rule_set, now):
    rule = EarningRuleFactory(rule_set=rule_set, valid_from=now - timedelta(days=1))
    client = staff_client()

    statuses = [
        client.get(TRY).status_code,
        client.post(TRY, try_form(lines="X;1;1;0")).status_code,
        client.get(CONFLICTS).status_code,
        client.get(EARNING).status_code,
        client.get(f"{EARNING}{rule.pk}/replace/").status_code,
    ]

    assert statuses == [403, 403, 403, 403, 403]


def test_staff_who_may_view_rules_may_try_but_not_change(rule_set, catalogue, now):
    rule = EarningRuleFactory(rule_set=rule_set, rate_percent=D("5"), valid_from=now - timedelta(days=1))
    client = staff_client("view_earningrule")

    tried = client.post(TRY, try_form(lines="SOFA-1;1;1000;0"))
    replace = client.post(f"{EARNING}{rule.pk}/replace/", {"rate_percent": "9"})
    ended = client.post(EARNING, {"action": "end_now", "_selected_action": [rule.pk]})

    assert tried.status_code == 200
    assert tried.context["result"].earn_points == D("50")
    assert client.get(CONFLICTS).status_code == 200
    assert replace.status_code == 403
    assert ended.status_code == 200  # no such action for a viewer: the list is shown again
    rule.refresh_from_db()
    assert (rule.rate_percent, rule.valid_until, EarningRule.objects.count()) == (D("5.00"), None, 1)


def test_a_manager_with_rule_permissions_adds_a_rule(rule_set):
    client = staff_client("view_earningrule", "add_earningrule", "change_earningrule", "view_ruleset")

    response = client.post(f"{EARNING}add/", earning_form(rule_set))

    assert response.status_code == 302
    assert EarningRule.objects.count() == 1


# --- tiers ---------------------------------------------------------------------------------------------------------


def test_the_programme_page_shows_a_tiers_past_terms(admin_client, retail, tiers):
    gold = tiers["gold"]
    gold.earn_rate_percent = D("11")
    gold.save()

    page = admin_client.get(f"/admin/programmes/programme/{retail.pk}/change/").content.decode()

    assert "<td>10.00 %</td><td>25.00 %</td>" in page
    assert "None: the earning rate and the maximum redemption never changed." in page
