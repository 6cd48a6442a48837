from django.utils.translation import gettext_lazy as _

from core.exceptions import ApplicationError, register_error

# Authentication and scope failures are raised as DRF exceptions (so DRF adds WWW-Authenticate);
# their codes are registered here for the schema.
register_error("invalid_api_key", 401, _("Unknown API key."))
register_error("api_key_revoked", 401, _("This API key has been revoked."))
register_error("channel_inactive", 401, _("This channel is deactivated."))
register_error("missing_scope", 403, _("The API key's channel lacks the scope this operation needs."))


class IdempotencyKeyRequired(ApplicationError):
    code = "idempotency_key_required"
    status_code = 400
    default_message = _("This operation needs an Idempotency-Key header.")


class IdempotencyKeyInvalid(ApplicationError):
    code = "idempotency_key_invalid"
    status_code = 400
    default_message = _("The Idempotency-Key must be 1 to 255 printable ASCII characters.")


class IdempotencyKeyReused(ApplicationError):
    code = "idempotency_key_reused"
    status_code = 422
    default_message = _("This Idempotency-Key was already used for a different request.")


class RequestInProgress(ApplicationError):
    code = "request_in_progress"
    status_code = 409
    default_message = _("A request with this Idempotency-Key is still being processed; retry later.")
