"""Races on apology budgets and approvals with real threads on PostgreSQL: the operator's row lock, the grant's row
lock and the unique operation key, not luck, keep each budget spent once and each grant decided once.

Where a race needs both calls to be in flight together, the test holds the lock in a third transaction and lets
go once both threads are seen waiting for it (``pg_stat_activity``): without the lock they would not wait and the
test fails on its wait, not by chance.
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from functools import partial

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction

from complaints.exceptions import ApologyNotAwaitingApproval
from complaints.models import ApologyBudget, ApologyGrant
from complaints.services import ApologyOutcome, apology_approve, apology_grant, apology_reject
from complaints.tests.conftest import MANAGER_PERMISSIONS
from complaints.tests.factories import ComplaintCaseFactory
from core.actors import Actor
from points.models import Lot
from points.tests.helpers import D, assert_consistent, buckets
from staff.models import AuditRecord
from tests.helpers import run_together

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.fail("the race tests need PostgreSQL: its row locks are what they prove")


def lock_waiters() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def wait_for_lock_waiters(count: int) -> None:
    deadline = time.monotonic() + 10
    while lock_waiters() < count:
        assert time.monotonic() < deadline, f"expected {count} sessions waiting for a lock"
        time.sleep(0.02)


def start(call) -> tuple[threading.Thread, list]:
    outcome: list = []

    def run() -> None:
        try:
            outcome.append(call())
        except Exception as error:
            outcome.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_two_grants_racing_for_the_last_of_the_budget_issue_one_and_the_other_waits(operator, budget):
    # 400 of the operator's 500 are used: two grants of 100 on two cases want the last 100 at once.
    assert apology_grant(
        case=ComplaintCaseFactory(), amount=300, reason="Late", actor=operator, operation_key="k:0"
    ).issued
    assert apology_grant(
        case=ComplaintCaseFactory(), amount=100, reason="Late", actor=operator, operation_key="k:1"
    ).issued
    cases = [ComplaintCaseFactory(), ComplaintCaseFactory()]
    calls = [
        partial(apology_grant, case=case, amount=100, reason="Broken leg", actor=operator, operation_key=f"race:{i}")
        for i, case in enumerate(cases)
    ]

    with transaction.atomic():  # the operator's row held here until both grants wait for it
        list(get_user_model().objects.select_for_update().filter(pk=operator.user.pk))
        threads = [start(call) for call in calls]
        wait_for_lock_waiters(2)
    for thread, _outcome in threads:
        thread.join(timeout=30)
        assert not thread.is_alive(), "a grant is stuck"

    outcomes = [outcome[0] for _thread, outcome in threads]
    assert all(isinstance(outcome, ApologyOutcome) for outcome in outcomes), outcomes
    assert sorted(outcome.grant.state for outcome in outcomes) == ["awaiting_approval", "issued"]
    issued_case = next(case for case, outcome in zip(cases, outcomes, strict=True) if outcome.issued)
    waiting_case = next(case for case in cases if case is not issued_case)
    assert buckets(issued_case.customer)[0] == D(100)
    assert not Lot.objects.filter(account__customer=waiting_case.customer).exists()
    assert AuditRecord.objects.filter(action=AuditRecord.Action.APOLOGY_REQUEST).count() == 1
    assert_consistent()


def test_the_same_grant_submitted_twice_at_once_is_granted_once(case, operator, budget):
    call = partial(apology_grant, case=case, amount=100, reason="Late", actor=operator, operation_key="admin:form-1")

    outcomes = run_together(call, call)

    assert all(isinstance(outcome, ApologyOutcome) for outcome in outcomes), outcomes
    assert sorted(outcome.replayed for outcome in outcomes) == [False, True]
    assert ApologyGrant.objects.count() == 1
    assert buckets(case.customer)[0] == D(100)
    assert_consistent()


def test_an_approval_and_a_rejection_at_once_decide_the_grant_once(case, operator, manager, make_staff):
    ApologyBudget.objects.create(user=operator.user, daily_limit=Decimal(0), case_limit=Decimal(0))
    waiting = apology_grant(case=case, amount=250, reason="Late", actor=operator, operation_key="k").grant
    other_manager = Actor(user=make_staff("manager-2", *MANAGER_PERMISSIONS))

    with transaction.atomic():  # the grant's row held here until both decisions wait for it
        list(ApologyGrant.objects.select_for_update().filter(pk=waiting.pk))
        approving = start(partial(apology_approve, grant=waiting, actor=manager, note="ok"))
        rejecting = start(partial(apology_reject, grant=waiting, actor=other_manager, note="no"))
        wait_for_lock_waiters(2)
    for thread, _outcome in (approving, rejecting):
        thread.join(timeout=30)
        assert not thread.is_alive(), "a decision is stuck"

    outcomes = [approving[1][0], rejecting[1][0]]
    refused = [outcome for outcome in outcomes if isinstance(outcome, ApologyNotAwaitingApproval)]
    decided = [outcome for outcome in outcomes if isinstance(outcome, ApologyGrant)]
    assert (len(refused), len(decided)) == (1, 1), outcomes
    waiting.refresh_from_db()
    assert waiting.state == decided[0].state
    if waiting.state == "issued":
        assert buckets(case.customer)[0] == D(250)
    else:
        assert not Lot.objects.filter(account__customer=case.customer).exists()
    assert_consistent()
