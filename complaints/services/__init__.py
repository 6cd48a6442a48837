"""Complaints desk services: the only code that writes complaint cases, apology grants and budgets."""

from complaints.services.apology import (
    APPROVE_PERMISSION,
    ISSUE_PERMISSION,
    ApologyOutcome,
    apology_approve,
    apology_grant,
    apology_lifetimes_ensure,
    apology_reject,
)
from complaints.services.budgets import apology_budget_delete, apology_budget_set
from complaints.services.cases import complaint_close, complaint_open, complaint_update

__all__ = [
    "APPROVE_PERMISSION",
    "ISSUE_PERMISSION",
    "ApologyOutcome",
    "apology_approve",
    "apology_budget_delete",
    "apology_budget_set",
    "apology_grant",
    "apology_lifetimes_ensure",
    "apology_reject",
    "complaint_close",
    "complaint_open",
    "complaint_update",
]
