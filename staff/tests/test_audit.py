"""The audit trail (SPEC F-STAFF-3): every manual action by a staff user records who, when, why, on what, before and
after — written by the service that acts, in its transaction; the rows cannot be changed; the admin list is
read-only, searchable and cheap."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, InternalError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from core.actors import SYSTEM, Actor
from core.roles import ANALYST, CRM_MANAGER
from customers.models import Customer, CustomerChange
from customers.services import (
    customer_anonymise,
    customer_block,
    customer_join,
    customer_merge,
    customer_unblock,
    customer_update,
)
from customers.services.history import PERSONAL_IN_AUDIT
from customers.tests.factories import CustomerFactory, NonMemberFactory, StoreFactory
from integrations.tests.factories import ChannelFactory
from orders.models import Reservation
from orders.services.reservations import reservation_cancel
from points.exceptions import InsufficientPoints
from points.models import Entry
from points.services import points_accrue, points_adjust
from programmes.models import CustomerTier, EarningRule, Tier
from programmes.services.rules import rule_create, rule_delete, rule_replace, rule_set_deactivate, rule_update
from programmes.services.tiers import tier_assign_manual
from programmes.tests.factories import EarningRuleFactory, RuleSetFactory
from staff.models import AuditRecord
from staff.tests.factories import StaffUserFactory, roles_ready

pytestmark = pytest.mark.django_db

Action = AuditRecord.Action
LIST_URL = "/admin/staff/auditrecord/"


@pytest.fixture(autouse=True)
def _roles(db):
    roles_ready()


@pytest.fixture
def clerk():
    return StaffUserFactory(username="olga", role=CRM_MANAGER)


@pytest.fixture
def staff(clerk) -> Actor:
    return Actor(user=clerk)


def only_record() -> AuditRecord:
    records = list(AuditRecord.objects.all())
    assert len(records) == 1, records
    return records[0]


def summary(record: AuditRecord) -> tuple:
    return (record.action, record.actor_user.username, record.reason, record.before, record.after)


# --- each manual action writes one record -------------------------------------------------------------------------


def test_a_points_adjustment_is_audited_with_the_balance_it_changed(staff, customer):
    operation = points_adjust(
        customer=customer, amount="50", operation_key="adj-1", actor=staff, reason="goodwill", balance_type="retail"
    )

    record = only_record()
    assert summary(record) == (
        Action.POINTS_ADJUST,
        "olga",
        "goodwill",
        {"balance_type": "retail", "available": "0.00"},
        {"balance_type": "retail", "available": "50.00"},
    )
    assert (record.customer_id, record.target_type, record.target_id) == (
        customer.pk,
        "points.entry",
        str(operation.entries[0].pk),
    )


def test_a_repeated_or_refused_adjustment_writes_no_second_record(staff, customer):
    points_adjust(customer=customer, amount="50", operation_key="adj-1", actor=staff, reason="goodwill")

    points_adjust(customer=customer, amount="50", operation_key="adj-1", actor=staff, reason="goodwill")
    with pytest.raises(InsufficientPoints):
        points_adjust(customer=customer, amount="-500", operation_key="adj-2", actor=staff, reason="too much")

    assert AuditRecord.objects.count() == 1


def test_what_a_channel_or_a_job_does_is_not_a_manual_action(customer):
    points_adjust(
        customer=customer, amount="50", operation_key="adj-api", actor=Actor(channel=ChannelFactory()), reason="api"
    )
    customer_update(customer=customer, actor=SYSTEM, language="en")

    assert not AuditRecord.objects.exists()


def test_a_profile_change_keeps_personal_values_out_of_the_trail(staff, customer):
    customer_update(customer=customer, actor=staff, reason="asked at the till", name="Anna K.", language="en")

    record = only_record()
    change = CustomerChange.objects.get(customer=customer, action="update")
    assert summary(record) == (
        Action.CUSTOMER_CHANGE,
        "olga",
        "asked at the till",
        {"name": PERSONAL_IN_AUDIT, "language": "ru"},
        {"name": PERSONAL_IN_AUDIT, "language": "en"},
    )
    # The values stay in the customer's history (which anonymisation redacts), which the record names.
    assert (record.target_type, record.target_id, record.customer_id) == (
        "customers.customerchange",
        str(change.pk),
        customer.pk,
    )
    assert change.changes["name"][1] == "Anna K."
    assert "Anna" not in record.target_label


@pytest.mark.parametrize(
    ("act", "before", "after"),
    [
        (lambda c, s: customer_block(customer=c, actor=s, reason="fraud"), "member", "blocked"),
        (lambda c, s: customer_join(customer=c, actor=s, reason="fraud"), "non_member", "member"),
    ],
    ids=["block", "join"],
)
def test_a_membership_change_is_audited(staff, act, before, after):
    customer = CustomerFactory() if before == "member" else NonMemberFactory()

    act(customer, staff)

    record = only_record()
    assert (record.action, record.before, record.after, record.reason) == (
        Action.CUSTOMER_MEMBERSHIP,
        {"membership": before},
        {"membership": after},
        "fraud",
    )


def test_unblocking_is_audited(staff, customer):
    customer_block(customer=customer, actor=staff, reason="fraud")

    customer_unblock(customer=customer, actor=staff, reason="cleared")

    records = list(AuditRecord.objects.order_by("pk").values_list("action", "reason", "after"))
    assert records == [
        (Action.CUSTOMER_MEMBERSHIP, "fraud", {"membership": "blocked"}),
        (Action.CUSTOMER_MEMBERSHIP, "cleared", {"membership": "member"}),
    ]


def test_a_merge_is_audited_once_on_the_survivor(staff):
    survivor, duplicate = CustomerFactory(name=""), CustomerFactory(name="Anna")

    customer_merge(duplicate=duplicate, survivor=survivor, actor=staff, reason="same person")

    record = only_record()
    assert (record.action, record.customer_id, record.reason) == (Action.CUSTOMER_MERGE, survivor.pk, "same person")
    assert (record.before["merged_duplicate"], record.after["merged_duplicate"]) == (None, duplicate.pk)
    assert record.after["name"] == PERSONAL_IN_AUDIT


def test_anonymisation_is_audited_without_personal_data(staff, customer):
    phone = str(customer.phone)

    customer_anonymise(customer=customer, actor=staff, reason="customer's request")

    record = only_record()
    assert summary(record) == (
        Action.CUSTOMER_ANONYMISE,
        "olga",
        "customer's request",
        {"membership": "member"},
        {"membership": "anonymised"},
    )
    assert phone not in str(AuditRecord.objects.values_list("target_label", "before", "after", "reason").get())


def test_a_manual_tier_is_audited(staff, customer):
    gold = Tier.objects.get(programme__code="retail", code="gold")
    until = timezone.now() + timedelta(days=30)

    tier_assign_manual(customer=customer, tier=gold, actor=staff, reason="VIP", until=until)

    record = only_record()
    row = CustomerTier.objects.get(customer=customer)
    assert (record.action, record.reason, record.customer_id, record.target_id) == (
        Action.TIER_CHANGE,
        "VIP",
        customer.pk,
        str(row.pk),
    )
    assert record.before == {"programme": "retail", "tier": "basic", "manual": False, "manual_until": None}
    assert record.after == {"programme": "retail", "tier": "gold", "manual": True, "manual_until": until.isoformat()}


def test_rule_changes_are_audited_with_the_fields_that_changed(staff):
    rule_set = RuleSetFactory()
    later = timezone.now() + timedelta(days=2)
    rule = EarningRuleFactory(rule_set=rule_set, valid_from=later, rate_percent=Decimal("5"))

    rule_update(rule=rule, changes={"rate_percent": Decimal("7"), "name": "Seven"}, actor=staff)
    in_force = EarningRuleFactory(rule_set=rule_set, rate_percent=Decimal("10"))
    new = rule_replace(rule=in_force, changes={"rate_percent": Decimal("12")}, actor=staff)
    rule_set_deactivate(rule_set=rule_set, actor=staff)

    update, replace, switch = AuditRecord.objects.order_by("pk")
    assert (update.action, update.target_id, update.before, update.after) == (
        Action.RULE_CHANGE,
        str(rule.pk),
        {"rate_percent": "5.00", "name": rule.name},
        {"rate_percent": "7", "name": "Seven"},
    )
    assert (replace.target_id, replace.before["rate_percent"], replace.after["rate_percent"]) == (
        str(new.pk),
        "10.00",
        "12",
    )
    assert replace.after["replaces"] == in_force.pk
    assert (switch.target_type, switch.before, switch.after) == (
        "programmes.ruleset",
        {"is_active": True},
        {"is_active": False},
    )


def test_a_created_and_a_deleted_rule_are_audited(staff):
    rule_set = RuleSetFactory()
    later = timezone.now() + timedelta(days=2)

    rule = rule_create(
        model=EarningRule,
        values={"rule_set": rule_set, "name": "New", "kind": "rate", "rate_percent": "8", "valid_from": later},
        actor=staff,
    )
    rule_pk = rule.pk
    rule_delete(rule=rule, actor=staff)

    created, deleted = AuditRecord.objects.order_by("pk")
    assert (created.before, created.after["name"], created.after["rate_percent"]) == ({}, "New", "8")
    assert (deleted.target_id, deleted.before["name"], deleted.after) == (str(rule_pk), "New", {})


def test_a_reservation_cancelled_by_staff_is_audited(staff, customer):
    now = timezone.now()
    reservation = Reservation.objects.create(
        channel=ChannelFactory(),
        number="R-1",
        customer=customer,
        store=StoreFactory(),
        items=[{"sku": "SOFA-1", "quantity": 1}],
        item_count=1,
        created_at=now,
        expires_at=now + timedelta(days=3),
    )

    reservation_cancel(reservation=reservation, actor=staff, reason="customer called")

    record = only_record()
    assert summary(record) == (
        Action.ORDER_CHANGE,
        "olga",
        "customer called",
        {"status": "active"},
        {"status": "cancelled"},
    )


def test_the_record_is_kept_only_with_the_action(staff, customer):
    def adjust_then_fail() -> None:
        with transaction.atomic():
            points_adjust(customer=customer, amount="50", operation_key="adj-1", actor=staff, reason="goodwill")
            raise RuntimeError("the caller's transaction fails later")

    with pytest.raises(RuntimeError):
        adjust_then_fail()

    assert not AuditRecord.objects.exists()
    assert not Entry.objects.exists()


# --- append-only ------------------------------------------------------------------------------------------------


@pytest.fixture
def record(staff, customer) -> AuditRecord:
    points_accrue(customer=customer, amount="10", kind="manual", operation_key="seed")
    points_adjust(customer=customer, amount="5", operation_key="adj", actor=staff, reason="goodwill")
    return AuditRecord.objects.get()


def test_audit_rows_cannot_be_changed_or_deleted_through_the_orm(record):
    record.reason = "nothing happened"

    with pytest.raises(TypeError):
        record.save()
    with pytest.raises(TypeError):
        record.delete()
    with pytest.raises(TypeError):
        AuditRecord.objects.filter(pk=record.pk).update(reason="nothing happened")
    with pytest.raises(TypeError):
        AuditRecord.objects.filter(pk=record.pk).delete()

    assert AuditRecord.objects.get().reason == "goodwill"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL's")
@pytest.mark.parametrize(
    "sql", ["UPDATE staff_auditrecord SET reason = 'x'", "DELETE FROM staff_auditrecord"], ids=["update", "delete"]
)
def test_audit_rows_cannot_be_changed_or_deleted_in_sql(record, sql):
    with pytest.raises((IntegrityError, InternalError)), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)

    assert AuditRecord.objects.get().reason == "goodwill"


# --- the admin ----------------------------------------------------------------------------------------------------


def test_nobody_adds_changes_or_deletes_audit_rows_in_the_admin(admin_client, record):
    change_url = reverse("admin:staff_auditrecord_change", args=[record.pk])

    added = admin_client.post(reverse("admin:staff_auditrecord_add"), {"reason": "x"})
    changed = admin_client.post(change_url, {"reason": "x"})
    deleted = admin_client.post(reverse("admin:staff_auditrecord_delete", args=[record.pk]), {"post": "yes"})
    page = admin_client.get(change_url)

    assert (added.status_code, changed.status_code, deleted.status_code) == (403, 403, 403)
    assert AuditRecord.objects.get().reason == "goodwill"
    html = page.content.decode()
    assert page.status_code == 200
    assert 'name="_save"' not in html
    assert "<th>available</th><td>10.00</td><td>15.00</td>" in html
    assert "goodwill" in html


def test_the_list_is_searched_by_customer_id_or_username_and_filtered_by_action(client, staff, customer):
    other = CustomerFactory()
    points_adjust(customer=customer, amount="5", operation_key="a1", actor=staff, reason="one")
    points_adjust(customer=other, amount="5", operation_key="a2", actor=Actor(user=StaffUserFactory()), reason="two")
    customer_block(customer=other, actor=staff, reason="three")
    client.force_login(StaffUserFactory(role=ANALYST))

    def reasons(**params) -> list[str]:
        response = client.get(LIST_URL, params)
        assert response.status_code == 200
        return sorted(record.reason for record in response.context["cl"].result_list)

    assert reasons(q=str(customer.pk)) == ["one"]
    assert reasons(q=f"#{other.pk}") == ["three", "two"]
    assert reasons(q="olga") == ["one", "three"]
    assert reasons(q="olg") == []  # exact
    assert reasons(action__exact=Action.CUSTOMER_MEMBERSHIP) == ["three"]


def test_the_list_takes_a_bounded_number_of_queries(client, customer, django_assert_max_num_queries):
    for number in range(30):
        actor = Actor(user=StaffUserFactory())
        points_adjust(customer=customer, amount="5", operation_key=f"a{number}", actor=actor, reason=f"r{number}")
    client.force_login(StaffUserFactory(role=CRM_MANAGER))

    # session, user, its own and its groups' permissions, the table's row estimate, the count (a small table), the
    # page with its staff users joined: none per row
    with django_assert_max_num_queries(7):
        response = client.get(LIST_URL)

    assert len(response.context["cl"].result_list) == 30
    assert reverse("admin:staff_auditrecord_add") not in response.content.decode()
    assert Customer.objects.count() == 1
