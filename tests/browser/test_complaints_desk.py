"""The complaints desk in a real browser (issue 7): an operator with a budget opens a case and grants apology points
above it, which wait for approval; a CRM manager approves them from the queue; the customer's balance shows them."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from complaints.models import ApologyBudget, ApologyGrant, ComplaintCase
from complaints.services import apology_lifetimes_ensure
from complaints.tests.conftest import OPERATOR_PERMISSIONS, permissions
from core.roles import COMPLAINTS, CRM_MANAGER, roles_sync
from customers.tests.factories import CustomerFactory
from points.models import Account, Lot
from points.services import points_reconcile
from points.services.lifetimes import balance_types_ensure_defaults
from programmes.demo import programmes_ensure_demo
from tests.browser.conftest import admin_login, screenshot

PASSWORD = "s3cret-pass"
MANAGER_PERMISSIONS = (
    "complaints.approve_apology",
    "complaints.view_apologygrant",
    "complaints.view_complaintcase",
    "customers.view_customer",
    "staff.view_all_stores",
)


def staff_user(username: str, group: str, names: tuple[str, ...]):
    """A staff user in the role's group, also holding the exact permissions the test needs (the groups' permission
    sets are refined elsewhere; the test must not depend on them)."""
    user = get_user_model().objects.create_user(username, password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    user.user_permissions.set(permissions(*names))
    return user


def messages(page) -> str:
    return page.locator("ul.messagelist").inner_text()


@pytest.mark.django_db(transaction=True)
def test_an_operator_grants_apology_points_over_budget_and_a_manager_approves_them(page) -> None:
    # What the migrations made and the transactional flush removed.
    balance_types_ensure_defaults()
    apology_lifetimes_ensure()
    programmes_ensure_demo()
    roles_sync()
    operator = staff_user("desk-operator", COMPLAINTS, OPERATOR_PERMISSIONS)
    manager = staff_user("crm-manager", CRM_MANAGER, MANAGER_PERMISSIONS)
    ApologyBudget.objects.create(user=operator, daily_limit=Decimal(500), case_limit=Decimal(300))
    customer = CustomerFactory(phone="+79161234567", name="Anna Petrova")

    # The operator opens a case for the customer …
    admin_login(page, "desk-operator", PASSWORD)
    page.goto(f"/admin/complaints/complaintcase/add/?customer={customer.pk}")
    page.select_option("#id_category", "delivery")
    page.fill("#id_description", "The sofa arrived two weeks late and the delivery team scratched the floor.")
    page.click("input[name=_continue]")
    page.wait_for_selector("a.issue-apology-link")
    case = ComplaintCase.objects.get()
    assert (case.customer_id, case.created_by_id) == (customer.pk, operator.pk)

    # … and grants more apology points than the case's limit allows without approval.
    page.click("a.issue-apology-link")
    assert page.locator("#daily-remaining").inner_text() == "500.00"
    assert page.locator("#case-remaining").inner_text() == "300.00"
    page.fill("#id_amount", "400")
    page.fill("#id_reason", "Delivery two weeks late; floor scratched by our team.")
    screenshot(page, "complaints-issue")
    page.click("#issue_apology_form input[type=submit]")
    page.wait_for_selector("ul.messagelist")

    assert "sent for approval" in messages(page)
    assert "awaiting approval" in page.locator("#grants-group").inner_text()
    grant = ApologyGrant.objects.get()
    assert (grant.state, grant.amount) == ("awaiting_approval", Decimal("400.00"))
    assert not Lot.objects.exists()

    # A CRM manager approves it from the queue.
    page.context.clear_cookies()
    admin_login(page, "crm-manager", PASSWORD)
    page.goto("/admin/complaints/apologygrant/")
    page.click("a.approval-queue-link")
    page.wait_for_selector(f"input[name=_selected_action][value='{grant.pk}']")
    screenshot(page, "complaints-approval-queue")
    page.check(f"input[name=_selected_action][value='{grant.pk}']")
    page.select_option("select[name=action]", "approve_grants")
    page.click("button[name=index]")
    page.wait_for_selector("#decided-grants")
    page.fill("#id_note", "Loyal customer since 2019.")
    page.click("#content-main form input[type=submit]")
    page.wait_for_selector("ul.messagelist")

    assert "approved" in messages(page)
    grant.refresh_from_db()
    assert (grant.state, grant.decided_by_id) == ("issued", manager.pk)

    # The customer's balance shows the points.
    page.goto(f"/admin/customers/customer/{customer.pk}/change/")
    assert "400.00" in page.locator("#content-main").inner_text()
    # … and the page's script has put its histories in place: the case, with the points issued on it.
    complaints = page.locator("#complaints-group table")
    complaints.wait_for()
    assert "400" in complaints.inner_text()
    account = Account.objects.get(customer=customer)
    assert account.available == Decimal("400.00")
    assert points_reconcile() == []
