"""The complaints desk in the admin: cases, the "Issue apology points" page, the approval queue and its actions,
budgets — through the test client, as operators and CRM managers, with bounded query counts."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.messages import get_messages

from complaints.models import ApologyBudget, ApologyGrant, ComplaintCase
from complaints.services import apology_approve, apology_grant, complaint_close
from complaints.tests.conftest import OPERATOR_PERMISSIONS
from complaints.tests.factories import ComplaintCaseFactory
from core.actors import Actor
from customers.tests.factories import CustomerFactory
from points.models import Lot, LotKind
from points.tests.helpers import D, assert_consistent, buckets, key
from staff.models import AuditRecord

pytestmark = pytest.mark.django_db

CASES_URL = "/admin/complaints/complaintcase/"
GRANTS_URL = "/admin/complaints/apologygrant/"
QUEUE_URL = f"{GRANTS_URL}?state__exact=awaiting_approval"
BUDGETS_URL = "/admin/complaints/apologybudget/"


def issue_url(case) -> str:
    return f"{CASES_URL}{case.pk}/issue-apology/"


def case_url(case) -> str:
    return f"{CASES_URL}{case.pk}/change/"


def texts(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def logged_in(client, user):
    client.force_login(user)
    return client


def issue_form(client, case) -> dict:
    """The form's fields as the page renders them (with its fresh token)."""
    response = client.get(issue_url(case))
    assert response.status_code == 200
    return {"token": response.context["form"].initial["token"]}


def waiting_grants(operator, count=1) -> list[ApologyGrant]:
    return [
        apology_grant(
            case=ComplaintCaseFactory(), amount=1000, reason="Late", actor=operator, operation_key=key()
        ).grant
        for _ in range(count)
    ]


# --- cases -------------------------------------------------------------------------------------------


def test_an_operator_opens_a_case_through_the_service(client, operator_user):
    customer = CustomerFactory()
    logged_in(client, operator_user)

    form = client.get(f"{CASES_URL}add/?customer={customer.pk}")
    response = client.post(
        f"{CASES_URL}add/",
        {"customer": customer.pk, "order": "", "category": "quality", "description": "Scratched table top"},
    )

    assert form.status_code == 200
    assert response.status_code == 302, response.context["adminform"].form.errors
    case = ComplaintCase.objects.get()
    assert (case.customer_id, case.category, case.status, case.created_by) == (
        customer.pk,
        "quality",
        "open",
        operator_user,
    )


def test_closing_a_case_without_a_resolution_is_a_form_error(client, operator_user, case):
    logged_in(client, operator_user)
    data = {"category": case.category, "description": case.description, "status": "resolved", "resolution": ""}
    data |= {"grants-TOTAL_FORMS": 0, "grants-INITIAL_FORMS": 0, "grants-MIN_NUM_FORMS": 0, "grants-MAX_NUM_FORMS": 0}

    refused = client.post(case_url(case), data)
    closed = client.post(case_url(case), {**data, "resolution": "500 apology points"})

    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors["resolution"] == ["A closed case needs a resolution."]
    assert closed.status_code == 302
    case.refresh_from_db()
    assert (case.status, case.resolution, case.closed_at is not None) == ("resolved", "500 apology points", True)


@pytest.mark.parametrize("typed", ["8 (916) 123-45-67", "+7 916 1234567", "9161234567"])
def test_the_case_list_finds_cases_by_phone_in_any_format(admin_client, typed):
    mine = ComplaintCaseFactory(customer=CustomerFactory(phone="+79161234567"))
    ComplaintCaseFactory()

    response = admin_client.get(CASES_URL, {"q": typed})

    assert [case.pk for case in response.context["cl"].result_list] == [mine.pk]


def test_the_case_list_finds_a_case_by_number_and_filters_by_status_category_and_date(admin_client, operator):
    cases = [ComplaintCaseFactory(), ComplaintCaseFactory(category="staff")]
    complaint_close(case=cases[0], actor=operator, resolution="Sorry")

    def found(params):
        response = admin_client.get(CASES_URL, params)
        assert response.status_code == 200
        return sorted(case.pk for case in response.context["cl"].result_list)

    assert found({"q": f"#{cases[1].pk}"}) == [cases[1].pk]
    assert found({"status__exact": "resolved"}) == [cases[0].pk]
    assert found({"category__exact": "staff"}) == [cases[1].pk]
    assert found({"created_at__gte": "2000-01-01 00:00:00+03:00"}) == sorted(case.pk for case in cases)


def test_the_case_list_and_page_cost_a_bounded_number_of_queries(
    admin_client, operator, budget, django_assert_max_num_queries
):
    for _ in range(30):
        case = ComplaintCaseFactory()
        apology_grant(case=case, amount=1, reason="Late", actor=operator, operation_key=key())
        apology_grant(case=case, amount=1000, reason="Late", actor=operator, operation_key=key())

    with django_assert_max_num_queries(8):
        listed = admin_client.get(CASES_URL)
    with django_assert_max_num_queries(12):
        page = admin_client.get(case_url(case))

    assert listed.status_code == 200
    assert len(listed.context["cl"].result_list) == 30
    assert page.status_code == 200
    assert "awaiting approval" in page.content.decode()


# --- issuing apology points -------------------------------------------------------------------------


def test_the_issue_page_shows_the_operators_remaining_budget_and_the_cases(client, operator, budget, case):
    apology_grant(case=case, amount=120, reason="Late", actor=operator, operation_key=key())
    logged_in(client, operator.user)

    page = client.get(case_url(case)).content.decode()
    response = client.get(issue_url(case))

    assert issue_url(case) in page
    allowance = response.context["allowance"]
    assert (allowance.daily_remaining, allowance.case_remaining) == (D(380), D(180))
    html = response.content.decode()
    assert '<strong id="daily-remaining">380.00</strong>' in html
    assert '<strong id="case-remaining">180.00</strong>' in html


def test_within_the_budget_the_points_are_issued(client, operator, budget, case):
    logged_in(client, operator.user)

    response = client.post(issue_url(case), {**issue_form(client, case), "amount": "150", "reason": "Late sofa"})

    assert response.status_code == 302
    assert response.url == case_url(case)
    assert texts(response) == ["150.00 apology points issued."]
    assert buckets(case.customer)[0] == D(150)
    assert Lot.objects.get().kind == LotKind.APOLOGY
    assert_consistent()


def test_above_the_budget_the_grant_is_sent_for_approval(client, operator, budget, case):
    logged_in(client, operator.user)

    response = client.post(issue_url(case), {**issue_form(client, case), "amount": "301", "reason": "Late sofa"})

    assert response.status_code == 302
    (message,) = texts(response)
    assert "sent for approval" in message
    assert ApologyGrant.objects.get().state == "awaiting_approval"
    assert not Lot.objects.exists()


def test_a_resubmitted_form_grants_once(client, operator, budget, case):
    logged_in(client, operator.user)
    data = {**issue_form(client, case), "amount": "100", "reason": "Late sofa"}

    client.post(issue_url(case), data)
    again = client.post(issue_url(case), data)

    assert texts(again)[-1] == "This grant was already recorded."
    assert ApologyGrant.objects.count() == 1
    assert buckets(case.customer)[0] == D(100)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"amount": "", "reason": "Late"}, "amount"),
        ({"amount": "0", "reason": "Late"}, "amount"),
        ({"amount": "10", "reason": "   "}, "reason"),
        ({"amount": "1.001", "reason": "Late"}, "amount"),
    ],
    ids=["no-amount", "zero", "no-reason", "three-decimals"],
)
def test_what_would_be_refused_is_a_form_error(client, operator, budget, case, data, field):
    logged_in(client, operator.user)

    response = client.post(issue_url(case), {**issue_form(client, case), **data})

    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert ApologyGrant.objects.count() == 0


def test_a_closed_case_has_no_issue_page(client, operator, budget, case):
    complaint_close(case=case, actor=operator, resolution="Done")
    logged_in(client, operator.user)

    page = client.get(case_url(case)).content.decode()
    response = client.post(issue_url(case), {"token": "0" * 32, "amount": "10", "reason": "Late"})

    assert issue_url(case) not in page
    assert response.status_code == 302
    assert texts(response) == ["The case is closed: no apology points can be granted on it."]
    assert ApologyGrant.objects.count() == 0


def test_staff_without_the_issue_permission_get_403(client, make_staff, case):
    clerk = make_staff("clerk", "complaints.view_complaintcase", "complaints.change_complaintcase")
    logged_in(client, clerk)

    page = client.get(case_url(case)).content.decode()
    response = client.post(issue_url(case), {"token": "0" * 32, "amount": "10", "reason": "Late"})

    assert issue_url(case) not in page
    assert response.status_code == 403
    assert ApologyGrant.objects.count() == 0


# --- the approval queue ---------------------------------------------------------------------------


def test_the_queue_lists_only_waiting_grants_oldest_first_in_bounded_queries(
    client, operator, manager, budget, django_assert_max_num_queries
):
    apology_grant(case=ComplaintCaseFactory(), amount=10, reason="Late", actor=operator, operation_key=key())
    waiting = waiting_grants(operator, 25)
    logged_in(client, manager.user)

    with django_assert_max_num_queries(10):
        response = client.get(QUEUE_URL)

    assert response.status_code == 200
    assert [grant.pk for grant in response.context["cl"].result_list] == [grant.pk for grant in waiting]
    page = response.content.decode()
    assert "approve_grants" in page
    assert "reject_grants" in page
    assert 'class="approval-queue-link"' in page


def test_a_manager_approves_from_the_queue_after_a_confirmation(client, operator, manager):
    (waiting,) = waiting_grants(operator)
    logged_in(client, manager.user)
    selected = {"action": "approve_grants", "_selected_action": [waiting.pk]}

    confirmation = client.post(QUEUE_URL, selected)
    waiting.refresh_from_db()
    assert confirmation.status_code == 200
    assert waiting.state == "awaiting_approval"
    assert "Issue these apology points" in confirmation.content.decode()

    done = client.post(QUEUE_URL, {**selected, "confirmed": "yes", "note": "Loyal customer"})

    assert done.status_code == 302
    assert texts(done) == ["1 apology grant approved: its points are issued."]
    waiting.refresh_from_db()
    assert (waiting.state, waiting.decided_by, waiting.decision_note) == ("issued", manager.user, "Loyal customer")
    assert buckets(waiting.customer)[0] == D(1000)
    assert AuditRecord.objects.filter(action=AuditRecord.Action.APOLOGY_APPROVE).count() == 1
    assert_consistent()


def test_a_rejection_needs_a_note(client, operator, manager):
    (waiting,) = waiting_grants(operator)
    logged_in(client, manager.user)
    selected = {"action": "reject_grants", "_selected_action": [waiting.pk], "confirmed": "yes"}

    refused = client.post(QUEUE_URL, {**selected, "note": ""})
    waiting.refresh_from_db()
    assert refused.status_code == 200
    assert refused.context["form"].errors["note"]
    assert waiting.state == "awaiting_approval"

    done = client.post(QUEUE_URL, {**selected, "note": "Goodwill already given"})

    assert texts(done) == ["1 apology grant rejected."]
    waiting.refresh_from_db()
    assert waiting.state == "rejected"
    assert not Lot.objects.exists()


def test_an_already_decided_grant_is_reported_not_approved_twice(client, operator, manager, make_staff):
    first, second = waiting_grants(operator, 2)
    apology_approve(grant=first, actor=Actor(user=make_staff("other-manager", "complaints.approve_apology")))
    logged_in(client, manager.user)

    done = client.post(
        GRANTS_URL, {"action": "approve_grants", "_selected_action": [first.pk, second.pk], "confirmed": "yes"}
    )

    assert texts(done) == [
        f"#{first.pk}: This grant is not awaiting approval: it was already decided.",
        "1 apology grant approved: its points are issued.",
    ]
    assert Lot.objects.count() == 2


def test_operators_see_grants_but_cannot_approve(client, operator):
    (waiting,) = waiting_grants(operator)
    logged_in(client, operator.user)

    listed = client.get(QUEUE_URL)
    tried = client.post(QUEUE_URL, {"action": "approve_grants", "_selected_action": [waiting.pk], "confirmed": "yes"})

    assert listed.status_code == 200
    assert "approve_grants" not in listed.content.decode()
    assert tried.status_code in (200, 302)
    waiting.refresh_from_db()
    assert waiting.state == "awaiting_approval"
    assert not Lot.objects.exists()


def test_grants_cannot_be_added_changed_or_deleted_in_the_admin(admin_client, operator):
    (waiting,) = waiting_grants(operator)

    assert admin_client.get(f"{GRANTS_URL}add/").status_code == 403
    assert admin_client.post(f"{GRANTS_URL}{waiting.pk}/change/", {"amount": "1"}).status_code == 403
    assert admin_client.post(f"{GRANTS_URL}{waiting.pk}/delete/", {"post": "yes"}).status_code == 403
    waiting.refresh_from_db()
    assert waiting.amount == D(1000)


# --- budgets -------------------------------------------------------------------------------------------


def test_a_manager_sets_a_budget_through_the_service_audited(client, manager, operator_user):
    logged_in(client, manager.user)

    response = client.post(
        f"{BUDGETS_URL}add/",
        {"group": "", "user": operator_user.pk, "daily_limit": "500", "case_limit": "300", "change_reason": "new"},
    )

    assert response.status_code == 302
    budget = ApologyBudget.objects.get()
    assert (budget.user, budget.daily_limit, budget.case_limit) == (operator_user, D(500), D(300))
    record = AuditRecord.objects.get(action=AuditRecord.Action.BUDGET_CHANGE)
    assert (record.actor_user, record.reason, record.after["daily_limit"]) == (manager.user, "new", "500.00")


def test_a_budget_for_both_a_group_and_a_user_is_a_form_error(client, manager, operator_user, group_budget):
    group = group_budget(manager.user, 1, 1).group
    logged_in(client, manager.user)

    response = client.post(
        f"{BUDGETS_URL}add/",
        {"group": group.pk, "user": operator_user.pk, "daily_limit": "5", "case_limit": "5"},
    )

    assert response.status_code == 200
    assert "Set the budget for exactly one: a group or a user." in str(response.context["adminform"].form.errors)
    assert ApologyBudget.objects.count() == 1


def test_operators_cannot_change_budgets(client, operator_user):
    logged_in(client, operator_user)

    response = client.post(
        f"{BUDGETS_URL}add/", {"user": operator_user.pk, "daily_limit": "99999", "case_limit": "99999"}
    )

    assert response.status_code == 403
    assert not ApologyBudget.objects.exists()


def test_operator_permissions_are_enough_to_work_the_desk(client, make_staff, case):
    """The exact permissions the complaints role needs (see docs/complaints.md)."""
    operator = make_staff("desk", *OPERATOR_PERMISSIONS)
    ApologyBudget.objects.create(user=operator, daily_limit=Decimal(100), case_limit=Decimal(100))
    logged_in(client, operator)

    assert client.get(CASES_URL).status_code == 200
    assert client.get(f"{CASES_URL}add/").status_code == 200
    assert client.get(case_url(case)).status_code == 200
    assert client.get(GRANTS_URL).status_code == 200
    assert client.get(issue_url(case)).status_code == 200
