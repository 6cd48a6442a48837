"""The complaints desk in the admin: cases with their "Issue apology points" page (``cases``), the grants and
the approval queue (``grants``), the budgets (``budgets``). Every change goes through ``complaints.services``."""

from complaints.admin.budgets import ApologyBudgetAdmin
from complaints.admin.cases import ComplaintCaseAdmin
from complaints.admin.grants import ApologyGrantAdmin

__all__ = ["ApologyBudgetAdmin", "ApologyGrantAdmin", "ComplaintCaseAdmin"]
