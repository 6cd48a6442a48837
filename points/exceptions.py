from django.utils.translation import gettext_lazy as _

from core.exceptions import ApplicationError


class PointsError(ApplicationError):
    code = "points_error"
    status_code = 400
    default_message = _("The points operation is not possible.")


class InsufficientPoints(PointsError):
    code = "insufficient_points"
    status_code = 409
    default_message = _("Not enough spendable points.")


class OperationKeyConflict(PointsError):
    code = "operation_key_conflict"
    status_code = 422
    default_message = _("This operation key was already used for a different operation.")


class InvalidAmount(PointsError):
    code = "invalid_amount"
    status_code = 400
    default_message = _("The amount must be positive, with at most two decimal places.")


class HoldNotOpen(PointsError):
    code = "hold_not_open"
    status_code = 409
    default_message = _("The hold is already committed or released.")


class HoldNotFound(PointsError):
    code = "hold_not_found"
    status_code = 404
    default_message = _("No such hold.")


class LotNotPending(PointsError):
    code = "lot_not_pending"
    status_code = 409
    default_message = _("Only pending points can be unlocked or cancelled.")


class NothingToRefund(PointsError):
    code = "nothing_to_refund"
    status_code = 409
    default_message = _("The redemption has already been refunded in full.")


class ReasonRequired(PointsError):
    code = "reason_required"
    status_code = 400
    default_message = _("A manual operation needs an actor and a reason.")


class AccountNotFound(PointsError):
    code = "account_not_found"
    status_code = 404
    default_message = _("No such points account.")


class RefundExceedsRedemption(PointsError):
    code = "refund_exceeds_redemption"
    status_code = 409
    default_message = _("More points than are left to refund on this redemption.")


class NotARedemption(PointsError):
    code = "not_a_redemption"
    status_code = 404
    default_message = _("No such redemption.")


class UnknownBalanceType(PointsError):
    code = "unknown_balance_type"
    status_code = 400
    default_message = _("No such balance type.")


class ResetNotDue(PointsError):
    code = "reset_not_due"
    status_code = 409
    default_message = _("This reset is not scheduled to run yet, or has already run or been cancelled.")


class HoldsOpen(PointsError):
    code = "holds_open"
    status_code = 409
    default_message = _("Points are held at a checkout; commit or release the holds first.")


class LotMoved(PointsError):
    code = "lot_moved"
    status_code = 409
    default_message = _(
        "A merge split these points between customers; they cannot be handled in one operation. Adjust by hand."
    )
    raced_message = _("A merge moved these points while the operation waited. Try again.")
