"""What the complaints desk refuses, each with a stable machine code (prefixed: the codes are unique across the
application's error catalogue, and the ledger already owns ``reason_required``)."""

from django.utils.translation import gettext_lazy as _

from core.exceptions import ApplicationError


class ComplaintError(ApplicationError):
    code = "complaint_error"
    status_code = 400
    default_message = _("The complaint operation is not possible.")


class ComplaintInvalid(ComplaintError):
    code = "complaint_invalid"
    status_code = 400
    default_message = _("The complaint data is not valid.")


class ComplaintClosed(ComplaintError):
    code = "complaint_closed"
    status_code = 409
    default_message = _("The complaint case is closed: no apology points can be granted on it.")


class ApologyAmountInvalid(ComplaintError):
    code = "apology_amount_invalid"
    status_code = 400
    default_message = _("The amount must be positive, with at most two decimal places.")


class ApologyReasonRequired(ComplaintError):
    code = "apology_reason_required"
    status_code = 400
    default_message = _("Apology points need a reason.")


class ApologyNotAllowed(ComplaintError):
    code = "apology_not_allowed"
    status_code = 403
    default_message = _("You are not allowed to do this with apology points.")


class ApologySelfApproval(ComplaintError):
    code = "apology_self_approval"
    status_code = 403
    default_message = _("Apology points you requested must be approved by another manager.")


class ApologyNotAwaitingApproval(ComplaintError):
    code = "apology_not_awaiting_approval"
    status_code = 409
    default_message = _("This grant is not awaiting approval: it was already decided.")


class ApologyKeyConflict(ComplaintError):
    code = "apology_key_conflict"
    status_code = 422
    default_message = _("This operation key was already used for a different apology grant.")


class ApologyNoteRequired(ComplaintError):
    code = "apology_note_required"
    status_code = 400
    default_message = _("A rejection needs a note for the operator.")


class ApologyBudgetInvalid(ComplaintError):
    code = "apology_budget_invalid"
    status_code = 400
    default_message = _("A budget belongs to exactly one group or one user, with limits of zero or more.")
