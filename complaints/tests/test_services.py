"""The complaints desk's services: cases, apology grants within and above the budgets, approval, the audit."""

from __future__ import annotations

import importlib
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.apps import apps
from django.utils import timezone

from complaints.exceptions import (
    ApologyAmountInvalid,
    ApologyBudgetInvalid,
    ApologyKeyConflict,
    ApologyNotAllowed,
    ApologyNotAwaitingApproval,
    ApologyNoteRequired,
    ApologyReasonRequired,
    ApologySelfApproval,
    ComplaintClosed,
    ComplaintInvalid,
)
from complaints.models import ApologyBudget, ApologyGrant, ComplaintCase
from complaints.selectors import apology_allowance, apology_budget_for, approval_queue, customer_complaints
from complaints.services import (
    apology_approve,
    apology_budget_delete,
    apology_budget_set,
    apology_grant,
    apology_reject,
    complaint_close,
    complaint_open,
    complaint_update,
)
from complaints.tests.conftest import MANAGER_PERMISSIONS, OPERATOR_PERMISSIONS
from complaints.tests.factories import ComplaintCaseFactory
from core.actors import Actor
from customers.exceptions import CustomerMerged
from customers.tests.factories import CustomerFactory
from orders.models import Order
from points.models import Entry, Lot, LotKind, LotLifetime
from points.services.lifetimes import expiry_from
from points.tests.helpers import D, assert_consistent, buckets, key
from staff.models import AuditRecord

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)


def grant(case, actor, amount, *, reason="Delivery two weeks late", operation_key=None, now=NOW):
    return apology_grant(
        case=case, amount=amount, reason=reason, actor=actor, operation_key=operation_key or key("apology"), now=now
    )


def audits(action: str) -> list[AuditRecord]:
    return list(AuditRecord.objects.filter(action=action).order_by("pk"))


def no_points(customer) -> bool:
    return not Lot.objects.filter(account__customer=customer).exists()


# --- cases ---------------------------------------------------------------------------------------


def test_opening_a_case_records_who_and_when(operator):
    customer = CustomerFactory()

    case = complaint_open(
        customer=customer, category="quality", description="  Scratched table top ", actor=operator, now=NOW
    )

    case.refresh_from_db()
    assert (case.customer_id, case.category, case.description, case.status) == (
        customer.pk,
        "quality",
        "Scratched table top",
        "open",
    )
    assert (case.created_by, case.created_at, case.closed_at) == (operator.user, NOW, None)


@pytest.mark.parametrize(
    ("category", "description", "field"),
    [("refund", "Late", "category"), ("delivery", "   ", "description")],
    ids=["unknown-category", "blank-description"],
)
def test_a_case_needs_a_known_category_and_a_description(operator, category, description, field):
    with pytest.raises(ComplaintInvalid) as refused:
        complaint_open(customer=CustomerFactory(), category=category, description=description, actor=operator)

    assert list(refused.value.fields) == [field]
    assert ComplaintCase.objects.count() == 0


def test_a_case_about_another_customers_order_is_refused(operator, channel):
    other = CustomerFactory()
    order = Order.objects.create(channel=channel, number="SITE-1", customer=other, created_at=NOW)

    with pytest.raises(ComplaintInvalid) as refused:
        complaint_open(customer=CustomerFactory(), order=order, category="delivery", description="x", actor=operator)

    assert refused.value.fields["order"][0]["code"] == "order_of_another_customer"
    assert ComplaintCase.objects.count() == 0
    case = complaint_open(customer=other, order=order, category="delivery", description="Late", actor=operator)
    assert case.order_id == order.pk


def test_a_merged_duplicate_gets_no_case(operator):
    survivor = CustomerFactory()
    duplicate = CustomerFactory(merged_into=survivor, merged_at=NOW)

    with pytest.raises(CustomerMerged):
        complaint_open(customer=duplicate, category="delivery", description="Late", actor=operator)


def test_closing_needs_a_resolution_sets_closed_at_and_reopening_clears_it(case, operator):
    with pytest.raises(ComplaintInvalid):
        complaint_update(case=case, actor=operator, status="resolved")
    case.refresh_from_db()
    assert (case.status, case.closed_at) == ("open", None)

    closed = complaint_close(case=case, actor=operator, resolution="500 apology points", now=NOW)
    assert (closed.status, closed.closed_at, closed.resolution) == ("resolved", NOW, "500 apology points")

    reopened = complaint_update(case=case, actor=operator, status="in_progress")
    assert (reopened.status, reopened.closed_at) == ("in_progress", None)

    rejected = complaint_close(case=case, actor=operator, resolution="Not our fault", rejected=True, now=NOW)
    assert (rejected.status, rejected.closed_at) == ("rejected", NOW)


# --- grants within the budget ----------------------------------------------------------------------


def test_a_grant_within_the_budget_issues_an_apology_lot_living_180_days(case, operator, budget):
    outcome = grant(case, operator, "120.50")

    lot = Lot.objects.get(account__customer=case.customer)
    entry = Entry.objects.get(account__customer=case.customer)
    assert outcome.issued
    assert not outcome.replayed
    assert (lot.kind, lot.state, lot.amount, lot.remaining) == (LotKind.APOLOGY, "active", D("120.50"), D("120.50"))
    assert lot.lifetime_days == 180
    assert lot.expires_at == expiry_from(NOW, 180)
    assert (lot.source_type, lot.source_id) == ("complaint", str(case.pk))
    assert buckets(case.customer) == (D("120.50"), D(0), D(0), D(0))
    assert (entry.kind, entry.actor_user, entry.reason) == ("accrue", operator.user, "Delivery two weeks late")
    stored = ApologyGrant.objects.get()
    assert (stored.state, stored.entry_id, stored.customer_id) == ("issued", entry.pk, case.customer_id)
    assert (stored.requested_by, stored.decided_by, stored.decided_at) == (operator.user, None, None)
    assert_consistent()


def test_a_grant_is_audited_with_the_reason_the_budget_before_and_the_grant_after(case, operator, budget):
    outcome = grant(case, operator, 100)

    (record,) = audits(AuditRecord.Action.APOLOGY_GRANT)
    assert (record.actor_user, record.reason, record.customer_id) == (
        operator.user,
        "Delivery two weeks late",
        case.customer_id,
    )
    assert (record.target_type, record.target_id) == ("complaints.apologygrant", str(outcome.grant.pk))
    assert record.before == {"budget_id": budget.pk, "daily_remaining": "500.00", "case_remaining": "300.00"}
    assert record.after["state"] == "issued"
    assert record.after["amount"] == "100.00"
    assert audits(AuditRecord.Action.APOLOGY_REQUEST) == []


def test_the_budget_is_used_up_exactly_to_the_limit(case, operator, budget):
    assert grant(case, operator, 200).issued
    assert grant(case, operator, 100).issued  # the case's 300 exactly
    assert not grant(case, operator, "0.01").issued

    allowance = apology_allowance(user=operator.user, case=case, now=NOW)
    assert (allowance.daily_remaining, allowance.case_remaining) == (D("199.99"), D(0))


# --- above the budget: awaiting approval -------------------------------------------------------


def test_above_the_daily_limit_the_grant_waits_and_books_nothing(operator, budget):
    first, second = ComplaintCaseFactory(), ComplaintCaseFactory()
    assert grant(first, operator, 300).issued

    outcome = grant(second, operator, 201)  # 300 + 201 > 500 a day, though within the case's 300

    assert not outcome.issued
    assert (outcome.grant.state, outcome.grant.entry_id) == ("awaiting_approval", None)
    assert no_points(second.customer)
    (record,) = audits(AuditRecord.Action.APOLOGY_REQUEST)
    assert record.before["daily_remaining"] == "200.00"
    assert record.after["state"] == "awaiting_approval"
    assert_consistent()


def test_above_the_case_limit_the_grant_waits(case, operator, budget):
    outcome = grant(case, operator, 301)

    assert outcome.grant.state == "awaiting_approval"
    assert no_points(case.customer)


def test_waiting_grants_count_against_the_day_rejected_ones_do_not(operator, manager, budget):
    cases = [ComplaintCaseFactory() for _ in range(3)]
    waiting = grant(cases[0], operator, 450).grant  # above the case limit: waits, but uses the day

    assert not grant(cases[1], operator, 100).issued  # 450 + 100 > 500
    apology_reject(grant=waiting, actor=manager, note="Too generous")
    assert grant(cases[2], operator, 300).issued  # 100 waiting + 300 <= 500


def test_the_day_is_the_local_day(settings, operator, budget):
    # Moscow: 23:30 and 00:30 local are different days, though the same UTC date.
    yesterday_evening = timezone.make_aware(datetime(2026, 3, 9, 23, 30))
    this_morning = yesterday_evening + timedelta(hours=1)
    assert grant(ComplaintCaseFactory(), operator, 300, now=yesterday_evening).issued

    assert grant(ComplaintCaseFactory(), operator, 300, now=this_morning).issued
    assert not grant(ComplaintCaseFactory(), operator, 201, now=this_morning + timedelta(hours=23)).issued


def test_without_any_budget_every_grant_waits(case, operator):
    outcome = grant(case, operator, 1)

    assert outcome.grant.state == "awaiting_approval"
    assert apology_allowance(user=operator.user, case=case).budget is None


def test_the_users_own_budget_wins_over_the_most_generous_group(operator_user, group_budget):
    group_budget(operator_user, 100, 100)
    generous = group_budget(operator_user, 1000, 50)
    assert apology_budget_for(operator_user) == generous

    own = ApologyBudget.objects.create(user=operator_user, daily_limit=Decimal(10), case_limit=Decimal(10))
    assert apology_budget_for(operator_user) == own


def test_a_group_budget_applies_to_its_members(case, operator, group_budget):
    group_budget(operator.user, 200, 200)

    assert grant(case, operator, 200).issued
    assert not grant(case, operator, 1).issued


# --- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize("amount", [0, -5, "1.001", "abc"])
def test_an_invalid_amount_is_refused(case, operator, budget, amount):
    with pytest.raises(ApologyAmountInvalid) as refused:
        grant(case, operator, amount)

    assert refused.value.code == "apology_amount_invalid"
    assert ApologyGrant.objects.count() == 0


def test_a_grant_needs_a_reason(case, operator, budget):
    with pytest.raises(ApologyReasonRequired):
        grant(case, operator, 10, reason="  ")

    assert ApologyGrant.objects.count() == 0
    assert no_points(case.customer)


def test_a_closed_case_gets_no_grant(case, operator, budget):
    complaint_close(case=case, actor=operator, resolution="Done")

    with pytest.raises(ComplaintClosed) as refused:
        grant(case, operator, 10)

    assert refused.value.code == "complaint_closed"
    assert ApologyGrant.objects.count() == 0
    assert no_points(case.customer)


def test_staff_without_the_permission_cannot_grant(case, make_staff):
    clerk = Actor(user=make_staff("clerk", "complaints.view_complaintcase"))
    ApologyBudget.objects.create(user=clerk.user, daily_limit=Decimal(500), case_limit=Decimal(500))

    for actor in (clerk, Actor()):
        with pytest.raises(ApologyNotAllowed):
            grant(case, actor, 10)

    assert ApologyGrant.objects.count() == 0
    assert AuditRecord.objects.count() == 0


# --- idempotency ----------------------------------------------------------------------------------


def test_a_resubmitted_grant_is_granted_once(case, operator, budget):
    first = grant(case, operator, 100, operation_key="admin:form-1")

    again = grant(case, operator, 100, operation_key="admin:form-1")

    assert (again.replayed, again.grant.pk) == (True, first.grant.pk)
    assert ApologyGrant.objects.count() == 1
    assert Lot.objects.count() == 1
    assert buckets(case.customer)[0] == D(100)
    assert len(audits(AuditRecord.Action.APOLOGY_GRANT)) == 1


def test_a_key_reused_for_another_grant_is_a_conflict(case, operator, budget):
    grant(case, operator, 100, operation_key="admin:form-1")

    with pytest.raises(ApologyKeyConflict):
        grant(case, operator, 200, operation_key="admin:form-1")

    assert ApologyGrant.objects.count() == 1


# --- approval -------------------------------------------------------------------------------------


@pytest.fixture
def waiting(case, operator, budget) -> ApologyGrant:
    return grant(case, operator, 1000).grant


def test_approval_issues_the_points_by_the_approver(waiting, manager):
    later = NOW + timedelta(hours=2)

    approved = apology_approve(grant=waiting, actor=manager, note="Loyal customer", now=later)

    lot = Lot.objects.get(account__customer=waiting.customer)
    assert (lot.kind, lot.amount, lot.expires_at) == (LotKind.APOLOGY, D(1000), expiry_from(later, 180))
    assert buckets(waiting.customer)[0] == D(1000)
    approved.refresh_from_db()
    assert (approved.state, approved.decided_by, approved.decided_at) == ("issued", manager.user, later)
    assert approved.decision_note == "Loyal customer"
    assert approved.entry.actor_user == manager.user
    (record,) = audits(AuditRecord.Action.APOLOGY_APPROVE)
    assert (record.actor_user, record.reason, record.customer_id) == (
        manager.user,
        "Loyal customer",
        lot.account.customer_id,
    )
    assert (record.before["state"], record.after["state"]) == ("awaiting_approval", "issued")
    assert record.after["entry_id"] == approved.entry_id
    assert_consistent()


def test_rejection_books_nothing_and_needs_a_note(waiting, manager):
    with pytest.raises(ApologyNoteRequired):
        apology_reject(grant=waiting, actor=manager, note=" ")
    waiting.refresh_from_db()
    assert waiting.state == "awaiting_approval"

    rejected = apology_reject(grant=waiting, actor=manager, note="Goodwill already given")

    assert (rejected.state, rejected.decided_by, rejected.entry_id) == ("rejected", manager.user, None)
    assert no_points(waiting.customer)
    (record,) = audits(AuditRecord.Action.APOLOGY_REJECT)
    assert (record.reason, record.before["state"], record.after["state"]) == (
        "Goodwill already given",
        "awaiting_approval",
        "rejected",
    )


def test_a_grant_is_decided_once(waiting, manager):
    apology_approve(grant=waiting, actor=manager)

    with pytest.raises(ApologyNotAwaitingApproval):
        apology_approve(grant=waiting, actor=manager)
    with pytest.raises(ApologyNotAwaitingApproval):
        apology_reject(grant=waiting, actor=manager, note="No")

    assert Lot.objects.count() == 1
    assert buckets(waiting.customer)[0] == D(1000)
    assert len(audits(AuditRecord.Action.APOLOGY_APPROVE)) == 1


def test_an_issued_grant_cannot_be_approved(case, operator, budget, manager):
    issued = grant(case, operator, 10).grant

    with pytest.raises(ApologyNotAwaitingApproval):
        apology_approve(grant=issued, actor=manager)


def test_only_holders_of_approve_apology_decide(waiting, operator, make_staff):
    for actor in (operator, Actor(user=make_staff("other-operator", *OPERATOR_PERMISSIONS))):
        with pytest.raises(ApologyNotAllowed):
            apology_approve(grant=waiting, actor=actor)
        with pytest.raises(ApologyNotAllowed):
            apology_reject(grant=waiting, actor=actor, note="No")

    waiting.refresh_from_db()
    assert waiting.state == "awaiting_approval"
    assert no_points(waiting.customer)


def test_a_manager_cannot_approve_their_own_request(case, make_staff):
    manager = Actor(user=make_staff("manager", *MANAGER_PERMISSIONS))
    own = grant(case, manager, 10).grant  # no budget: waits

    with pytest.raises(ApologySelfApproval):
        apology_approve(grant=own, actor=manager)

    own.refresh_from_db()
    assert own.state == "awaiting_approval"


def test_an_approval_after_the_case_was_closed_still_issues(waiting, manager, operator):
    complaint_close(case=waiting.case, actor=operator, resolution="Apology points promised")

    assert apology_approve(grant=waiting, actor=manager).state == "issued"


# --- selectors ------------------------------------------------------------------------------------


def test_customer_complaints_are_newest_first_with_their_grant_totals(
    operator, manager, budget, django_assert_num_queries
):
    customer = CustomerFactory()
    older = ComplaintCaseFactory(customer=customer, created_at=NOW - timedelta(days=3))
    newer = ComplaintCaseFactory(customer=customer, created_at=NOW)
    ComplaintCaseFactory()  # another customer's
    grant(older, operator, 100)
    grant(older, operator, 50)
    grant(older, operator, 400)  # above the case limit: waits
    rejected = grant(newer, operator, 900).grant
    apology_reject(grant=rejected, actor=manager, note="No")

    with django_assert_num_queries(1):
        cases = customer_complaints(customer=customer, limit=10)

    assert [(c.pk, c.issued_points, c.awaiting_points) for c in cases] == [
        (newer.pk, D(0), D(0)),
        (older.pk, D(150), D(400)),
    ]
    assert [c.pk for c in customer_complaints(customer=customer, limit=1)] == [newer.pk]


def test_the_approval_queue_is_oldest_first_and_only_waiting(operator, manager):
    cases = [ComplaintCaseFactory() for _ in range(3)]
    later = grant(cases[0], operator, 10, now=NOW).grant
    earlier = grant(cases[1], operator, 10, now=NOW - timedelta(minutes=5)).grant
    decided = grant(cases[2], operator, 10).grant
    apology_approve(grant=decided, actor=manager)

    assert list(approval_queue()) == [earlier, later]


# --- budgets ----------------------------------------------------------------------------------------


def test_budget_changes_are_audited(manager, operator_user):
    budget = apology_budget_set(actor=manager, user=operator_user, daily_limit=D(500), case_limit=D(300), reason="new")
    apology_budget_set(actor=manager, budget=budget, user=operator_user, daily_limit=D(800), case_limit=D(300))
    apology_budget_delete(actor=manager, budget=budget)

    records = audits(AuditRecord.Action.BUDGET_CHANGE)
    assert [(r.before.get("daily_limit"), r.after.get("daily_limit")) for r in records] == [
        (None, "500.00"),
        ("500.00", "800.00"),
        ("800.00", None),
    ]
    assert records[0].reason == "new"
    assert ApologyBudget.objects.count() == 0


@pytest.mark.parametrize("holders", ["none", "both"])
def test_a_budget_belongs_to_exactly_one_group_or_user(manager, operator_user, group_budget, holders):
    group = group_budget(operator_user, 1, 1).group
    kwargs = {} if holders == "none" else {"group": group, "user": operator_user}

    with pytest.raises(ApologyBudgetInvalid):
        apology_budget_set(actor=manager, daily_limit=D(1), case_limit=D(1), **kwargs)

    assert ApologyBudget.objects.count() == 1


# --- the lifetime migration -------------------------------------------------------------------


def test_the_migration_gives_every_balance_type_an_apology_lifetime_of_180_days():
    migration = importlib.import_module("complaints.migrations.0002_apology_lot_lifetime")
    LotLifetime.objects.filter(kind=LotKind.APOLOGY, balance_type__code="b2b").delete()
    LotLifetime.objects.filter(kind=LotKind.APOLOGY, balance_type__code="retail").update(lifetime_days=30)

    migration.apology_lifetimes(apps, None)

    assert dict(
        LotLifetime.objects.filter(kind=LotKind.APOLOGY).values_list("balance_type__code", "lifetime_days")
    ) == {
        "b2b": 180,
        "retail": 30,  # set by hand: left alone
    }
