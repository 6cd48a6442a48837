"""The ledger in the admin: read-only tables, the manual adjustment form, balances on the customer, resets."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.admin import EstimatedCountPaginator
from core.roles import CRM_MANAGER, SHOWROOM_STAFF, roles_sync
from customers.tests.factories import CustomerFactory
from points.models import BalanceReset, BalanceType, Entry, Hold, Lot, LotLifetime
from points.services import points_accrue, points_hold, points_redeem, points_reset_schedule
from points.tests.helpers import D, assert_consistent, buckets, key

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)


def accrue(customer, amount, *, days=365, **kwargs):
    return points_accrue(
        customer=customer,
        amount=amount,
        kind="purchase",
        operation_key=key("accrue"),
        expires_at=NOW + timedelta(days=days),
        now=NOW,
        **kwargs,
    ).lot


@pytest.fixture
def staff_client(client, django_user_model):
    """``staff_client(*codenames)`` → a client logged in as staff holding exactly those permissions, not confined
    to stores (``view_all_stores``: store scoping is tested in staff/tests/test_permissions.py)."""

    def make(*codenames):
        user = django_user_model.objects.create_user("clerk", password="x", is_staff=True)
        user.user_permissions.set(Permission.objects.filter(codename__in=[*codenames, "view_all_stores"]))
        client.force_login(user)
        return client

    return make


def adjust_url(customer) -> str:
    return f"/admin/customers/customer/{customer.pk}/adjust-points/"


def token_of(response) -> str:
    match = re.search(r'name="token" value="([0-9a-f-]{36})"', response.content.decode())
    assert match, "the form carries no token"
    return match[1]


def adjustment(token, amount, reason="Goodwill", balance_type="retail", **extra):
    return {"token": token, "amount": amount, "reason": reason, "balance_type": balance_type, **extra}


# --- read-only ledger tables -----------------------------------------------------------------


@pytest.mark.smoke
def test_lot_entry_and_hold_pages_open_read_only(admin_client, customer):
    lot = accrue(customer, 100)
    redemption = points_redeem(customer=customer, amount=30, operation_key="erp:1042", now=NOW).entries[0]
    hold = points_hold(customer=customer, amount=5, operation_key=key(), now=NOW).hold

    pages = {
        url: admin_client.get(url)
        for url in (
            "/admin/points/lot/",
            f"/admin/points/lot/{lot.pk}/change/",
            "/admin/points/entry/",
            f"/admin/points/entry/{redemption.pk}/change/",
            "/admin/points/hold/",
            f"/admin/points/hold/{hold.pk}/change/",
            "/admin/points/account/",
        )
    }

    assert {url: response.status_code for url, response in pages.items()} == dict.fromkeys(pages, 200)
    for url, response in pages.items():
        html = response.content.decode()
        assert 'name="_save"' not in html, url
        assert "/add/" not in html.split('id="content"')[1], url
        assert "deletelink" not in html, url
    entry_page = pages[f"/admin/points/entry/{redemption.pk}/change/"].content.decode()
    assert f"/admin/points/lot/{lot.pk}/change/" in entry_page  # the allocation names the lot it consumed


@pytest.mark.parametrize("model", ["lot", "entry", "hold", "account"])
def test_ledger_rows_cannot_be_added_or_deleted(admin_client, customer, model):
    accrue(customer, 100)
    hold = points_hold(customer=customer, amount=5, operation_key=key(), now=NOW).hold
    pk = {"lot": Lot.objects.get(), "entry": Entry.objects.first(), "hold": hold, "account": hold.account}[model].pk
    counts = (Lot.objects.count(), Entry.objects.count(), Hold.objects.count())

    added = admin_client.post(f"/admin/points/{model}/add/", {})
    deleted = admin_client.post(f"/admin/points/{model}/{pk}/delete/", {"post": "yes"})

    assert (added.status_code, deleted.status_code) == (403, 403)
    assert (Lot.objects.count(), Entry.objects.count(), Hold.objects.count()) == counts


def test_journal_search_by_phone_in_any_format_or_operation_key(admin_client):
    wanted = CustomerFactory(phone="+79161234567")
    other = CustomerFactory(phone="+79031112233")
    accrue(wanted, 100)
    accrue(other, 200)
    points_redeem(customer=other, amount=10, operation_key="erp:1042", now=NOW)

    by_phone = admin_client.get("/admin/points/entry/", {"q": "8 916 123-45-67"})
    by_key = admin_client.get("/admin/points/entry/", {"q": "erp:1042"})
    lots = admin_client.get("/admin/points/lot/", {"q": "+79031112233"})

    assert list(by_phone.context["cl"].result_list.values_list("account__customer", flat=True)) == [wanted.pk]
    assert list(by_key.context["cl"].result_list.values_list("operation_key", flat=True)) == ["erp:1042"]
    assert list(lots.context["cl"].result_list.values_list("amount", flat=True)) == [D(200)]


@pytest.mark.parametrize("rows", [3, 30])
def test_journal_list_query_count_does_not_grow_with_rows(admin_client, django_assert_max_num_queries, rows):
    for _ in range(rows):
        accrue(CustomerFactory(), 10)

    # session, user, count, page of rows with customer, balance type, channel and user joined
    with django_assert_max_num_queries(5):
        response = admin_client.get("/admin/points/entry/")

    assert len(response.context["cl"].result_list) == rows


# --- balances on the customer ----------------------------------------------------------------


def test_customer_page_shows_balances_per_type(admin_client, customer):
    accrue(customer, 100, days=10)
    accrue(customer, 250, days=300)
    accrue(customer, 40, balance_type="b2b")
    points_accrue(customer=customer, amount=60, kind="purchase", operation_key=key(), pending=True, now=NOW)
    points_hold(customer=customer, amount=30, operation_key=key(), now=NOW)

    response = admin_client.get(f"/admin/customers/customer/{customer.pk}/change/")

    html = response.content.decode()
    cells = re.findall(
        r"<tr><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td></tr>", html
    )
    assert cells == [
        ("Retail points", "320.00", "60.00", "30.00", "0.00", "70.00"),
        ("B2B points", "40.00", "0.00", "0.00", "0.00", "0.00"),
    ]
    assert adjust_url(customer) in html


def test_customer_without_points_says_so_and_add_page_has_no_points_section(admin_client, customer):
    change = admin_client.get(f"/admin/customers/customer/{customer.pk}/change/")
    add = admin_client.get("/admin/customers/customer/add/")

    assert "No points yet." in change.content.decode()
    assert (add.status_code, "points_balances" in add.content.decode()) == (200, False)


# --- manual adjustment -----------------------------------------------------------------------


@pytest.mark.smoke
def test_adjustment_form_adds_points_audited_with_the_staff_user(admin_client, admin_user, customer):
    form = admin_client.get(adjust_url(customer))

    response = admin_client.post(adjust_url(customer), adjustment(token_of(form), "500", "Late delivery"))

    assert response.status_code == 302
    assert response["Location"] == f"/admin/customers/customer/{customer.pk}/change/"
    entry = Entry.objects.get()
    assert (entry.kind, entry.amount, entry.reason, entry.actor_user, entry.actor_channel) == (
        "adjust",
        D(500),
        "Late delivery",
        admin_user,
        None,
    )
    assert entry.operation_key == f"admin:{token_of(form)}"
    assert (Lot.objects.get().kind, buckets(customer)) == ("manual", (D(500), D(0), D(0), D(0)))
    assert_consistent()


def test_submitting_the_same_form_twice_adjusts_once(admin_client, customer):
    token = token_of(admin_client.get(adjust_url(customer)))

    admin_client.post(adjust_url(customer), adjustment(token, "500"))
    again = admin_client.post(adjust_url(customer), adjustment(token, "500"), follow=True)

    assert buckets(customer) == (D(500), D(0), D(0), D(0))
    assert Entry.objects.count() == 1
    assert "This adjustment was already recorded." in again.content.decode()


def test_removal_with_expiry_date_and_of_another_balance_type(admin_client, customer):
    accrue(customer, 100, balance_type="b2b")
    token = token_of(admin_client.get(adjust_url(customer)))

    response = admin_client.post(adjust_url(customer), adjustment(token, "-40", balance_type="b2b"))

    assert response.status_code == 302
    assert buckets(customer, "b2b") == (D(60), D(0), D(0), D(0))


def test_added_points_get_the_chosen_expiry(admin_client, customer):
    token = token_of(admin_client.get(adjust_url(customer)))
    expires = timezone.localtime(NOW + timedelta(days=40)).replace(second=0)

    admin_client.post(
        adjust_url(customer),
        adjustment(token, "25", expires_at_0=expires.strftime("%Y-%m-%d"), expires_at_1=expires.strftime("%H:%M:%S")),
    )

    assert Lot.objects.get().expires_at == expires


def test_removing_more_than_spendable_shows_the_error_on_the_form_and_changes_nothing(admin_client, customer):
    accrue(customer, 100)
    token = token_of(admin_client.get(adjust_url(customer)))

    response = admin_client.post(adjust_url(customer), adjustment(token, "-100.01"))

    assert response.status_code == 200
    assert response.context["form"].errors == {"amount": ["Not enough spendable points: 100.00 can be removed."]}
    assert token_of(response) == token  # a corrected resubmission is still the same operation
    assert buckets(customer) == (D(100), D(0), D(0), D(0))
    assert Entry.objects.count() == 1


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        ({"amount": "10", "reason": ""}, {"reason": ["This field is required."]}),
        ({"amount": "0"}, {"amount": ["The amount must not be zero."]}),
        ({"amount": "1.001"}, {"amount": ["Ensure that there are no more than 2 decimal places."]}),
        (
            {"amount": "-5", "expires_at_0": "2999-01-01", "expires_at_1": "00:00:00"},
            {"expires_at": ["Only added points get an expiry."]},
        ),
        (
            {"amount": "5", "expires_at_0": "2000-01-01", "expires_at_1": "00:00:00"},
            {"expires_at": ["The expiry must be in the future."]},
        ),
    ],
)
def test_invalid_adjustment_is_shown_on_the_form_and_changes_nothing(admin_client, customer, data, errors):
    token = token_of(admin_client.get(adjust_url(customer)))

    response = admin_client.post(adjust_url(customer), {**adjustment(token, "1"), **data})

    assert response.status_code == 200
    assert response.context["form"].errors == errors
    assert not Entry.objects.exists()


def test_staff_without_the_adjust_permission_get_403(staff_client, customer):
    client = staff_client("view_customer", "change_customer")

    page = client.get(adjust_url(customer))
    post = client.post(adjust_url(customer), adjustment("6f1c2d9e-6a55-4a4e-9d2b-0d6f7f0a8b11", "500"))
    customer_page = client.get(f"/admin/customers/customer/{customer.pk}/change/")

    assert (page.status_code, post.status_code) == (403, 403)
    assert not Entry.objects.exists()
    assert adjust_url(customer) not in customer_page.content.decode()


def test_staff_with_the_adjust_permission_may_adjust(staff_client, customer):
    client = staff_client("view_customer", "adjust_points")
    token = token_of(client.get(adjust_url(customer)))

    response = client.post(adjust_url(customer), adjustment(token, "50"))

    assert response.status_code == 302
    assert Entry.objects.get().actor_user.username == "clerk"


def test_crm_managers_hold_the_adjust_permission():
    roles_sync()

    granted = Permission.objects.get(codename="adjust_points").group_set.values_list("name", flat=True)
    assert CRM_MANAGER in granted
    assert SHOWROOM_STAFF not in granted


# --- configuration and resets ----------------------------------------------------------------


def test_managers_configure_lot_lifetimes_per_balance_type(admin_client):
    retail = BalanceType.objects.get(code="retail")
    welcome = LotLifetime.objects.get(balance_type=retail, kind="welcome")

    response = admin_client.post(
        f"/admin/points/balancetype/{retail.pk}/change/",
        {
            "name": "Retail points",
            "default_lifetime_days": "365",
            "lifetimes-TOTAL_FORMS": "2",
            "lifetimes-INITIAL_FORMS": "1",
            "lifetimes-0-id": welcome.pk,
            "lifetimes-0-balance_type": retail.pk,
            "lifetimes-0-kind": "welcome",
            "lifetimes-0-lifetime_days": "60",
            "lifetimes-1-balance_type": retail.pk,
            "lifetimes-1-kind": "birthday",
            "lifetimes-1-lifetime_days": "30",
        },
    )

    assert response.status_code == 302
    lifetimes = dict(retail.lifetimes.values_list("kind", "lifetime_days"))
    assert lifetimes == {"welcome": 60, "birthday": 30, "apology": 180}  # apology: the complaints migration's
    assert BalanceType.objects.get(pk=retail.pk).code == "retail"


def test_manager_schedules_a_reset_and_sees_its_dry_run(admin_client, admin_user):
    member, non_member = CustomerFactory(), CustomerFactory(membership="non_member", joined_at=None)
    accrue(member, 100)
    accrue(non_member, 70)
    run_at = timezone.localtime(NOW + timedelta(days=30)).replace(second=0)

    added = admin_client.post(
        "/admin/points/balancereset/add/",
        {
            "balance_type": BalanceType.objects.get(code="retail").pk,
            "memberships": ["member"],
            "run_at_0": run_at.strftime("%Y-%m-%d"),
            "run_at_1": run_at.strftime("%H:%M:%S"),
            "reason": "Programme relaunch",
        },
    )
    reset = BalanceReset.objects.get()
    page = admin_client.get(f"/admin/points/balancereset/{reset.pk}/change/")

    assert added.status_code == 302
    assert (reset.memberships, reset.run_at, reset.created_by, reset.state) == (
        ["member"],
        run_at,
        admin_user,
        "scheduled",
    )
    assert "If it ran now: 1 accounts, 100.00 points would be zeroed." in page.content.decode()
    assert 'name="_save"' not in page.content.decode()
    assert buckets(member) == (D(100), D(0), D(0), D(0))


def test_run_now_refuses_a_reset_that_is_not_due_and_changes_nothing(admin_client, admin_user, customer):
    accrue(customer, 100)
    reset = points_reset_schedule(
        balance_type=BalanceType.objects.get(code="retail"),
        run_at=NOW + timedelta(days=1),
        reason="Relaunch",
        created_by=admin_user,
    )

    response = admin_client.post(
        "/admin/points/balancereset/", {"action": "run_now", "_selected_action": [reset.pk]}, follow=True
    )

    assert "This reset is not scheduled to run yet, or has already run or been cancelled." in response.content.decode()
    assert BalanceReset.objects.get().state == "scheduled"
    assert buckets(customer) == (D(100), D(0), D(0), D(0))


def test_run_now_zeroes_a_due_reset(admin_client, admin_user, customer):
    accrue(customer, 100)
    reset = points_reset_schedule(
        balance_type=BalanceType.objects.get(code="retail"),
        run_at=timezone.now() - timedelta(minutes=1),
        reason="Relaunch",
        created_by=admin_user,
    )

    response = admin_client.post(
        "/admin/points/balancereset/", {"action": "run_now", "_selected_action": [reset.pk]}, follow=True
    )

    reset.refresh_from_db()
    assert "1 accounts reset, 100.00 points zeroed." in response.content.decode()
    assert (reset.state, reset.accounts_reset, reset.points_reset) == ("done", 1, D(100))
    assert buckets(customer) == (D(0), D(0), D(0), D(0))
    assert Entry.objects.filter(kind="reset").get().actor_user == admin_user
    assert_consistent()


def test_unfiltered_big_list_shows_the_estimated_count_instead_of_counting(admin_client, customer, monkeypatch):
    for _ in range(3):
        accrue(customer, 10)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE points_entry")
    monkeypatch.setattr(EstimatedCountPaginator, "exact_below", 3)

    with CaptureQueriesContext(connection) as unfiltered:
        listing = admin_client.get("/admin/points/entry/")
    with CaptureQueriesContext(connection) as filtered:
        admin_client.get("/admin/points/entry/", {"kind__exact": "redeem"})  # expected to be few: counted

    assert listing.context["cl"].result_count == 3
    assert not [q for q in unfiltered.captured_queries if "COUNT(" in q["sql"]]
    assert [q for q in filtered.captured_queries if "COUNT(" in q["sql"]]
