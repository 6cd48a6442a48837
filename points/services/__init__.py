"""The ledger's service API: the only code that writes accounts, lots, holds and journal rows."""

from points.services.accrual import (
    points_accrue,
    points_accrue_lots,
    points_cancel_accrual,
    points_split_pending,
    points_unlock,
    points_unlock_due,
)
from points.services.adjustment import points_adjust
from points.services.expiry import points_expire_due
from points.services.holds import (
    points_hold,
    points_hold_commit,
    points_hold_release,
    points_holds_release_expired,
)
from points.services.journal import SYSTEM, Actor, PointsOperation
from points.services.reconcile import points_reconcile
from points.services.redemption import points_redeem, points_refund
from points.services.reset import (
    points_reset_cancel,
    points_reset_preview,
    points_reset_run,
    points_reset_schedule,
    points_resets_run_due,
)
from points.services.reversal import points_clawback
from points.services.transfer import points_lift_restriction, points_move_to_customer

__all__ = [
    "SYSTEM",
    "Actor",
    "PointsOperation",
    "points_accrue",
    "points_accrue_lots",
    "points_adjust",
    "points_cancel_accrual",
    "points_clawback",
    "points_expire_due",
    "points_hold",
    "points_hold_commit",
    "points_hold_release",
    "points_holds_release_expired",
    "points_lift_restriction",
    "points_move_to_customer",
    "points_reconcile",
    "points_redeem",
    "points_refund",
    "points_reset_cancel",
    "points_reset_preview",
    "points_reset_run",
    "points_reset_schedule",
    "points_resets_run_due",
    "points_split_pending",
    "points_unlock",
    "points_unlock_due",
]
