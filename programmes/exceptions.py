from django.utils.translation import gettext_lazy as _

from core.exceptions import ApplicationError


class ProgrammeError(ApplicationError):
    code = "programme_error"
    status_code = 400
    default_message = _("The programme operation is not possible.")


class ProgrammeNotFound(ProgrammeError):
    code = "programme_not_found"
    status_code = 404
    default_message = _("There is no loyalty programme for this customer.")


class TierAssignmentInvalid(ProgrammeError):
    code = "tier_assignment_invalid"
    status_code = 400
    default_message = _("This tier cannot be assigned.")


class PurchaseRecordConflict(ProgrammeError):
    """The source was recorded before with another customer or amount."""

    code = "purchase_record_conflict"
    status_code = 409
    default_message = _("This purchase was already recorded with other data.")


class CartInvalid(ProgrammeError):
    """``fields`` names each bad line and field: ``{"lines.2.quantity": [{"code", "message"}]}``."""

    code = "cart_invalid"
    status_code = 400
    default_message = _("Some cart lines are invalid.")


class RedemptionAboveMaximum(ProgrammeError):
    """``extra.maximum`` is the most this customer may spend on this cart."""

    code = "redemption_above_maximum"
    status_code = 422
    default_message = _("More points than may be spent on this cart.")


class RuleInvalid(ProgrammeError):
    """``fields``: ``{"rate_percent": [{"code", "message"}], "__all__": [...]}``."""

    code = "rule_invalid"
    status_code = 400
    default_message = _("The rule is invalid.")


class RuleChangeRefused(ProgrammeError):
    """The change would rewrite the past: a rule that has taken effect changed, or a start or end in the past."""

    code = "rule_change_refused"
    status_code = 409
    default_message = _("The change would rewrite the past: calculations already made could no longer be reproduced.")


class RuleNotReplaceable(ProgrammeError):
    code = "rule_not_replaceable"
    status_code = 409
    default_message = _(
        "Only a rule in force can be replaced: a rule not yet in force is edited, an ended one stays as it was."
    )
