from django.utils.translation import gettext_lazy as _

from core.exceptions import ApplicationError


class CustomerError(ApplicationError):
    code = "customer_error"
    status_code = 400
    default_message = _("The customer operation is not possible.")


class CustomerExists(CustomerError):
    code = "customer_exists"
    status_code = 409
    default_message = _("A customer with this phone already exists.")


class CustomerNotFound(CustomerError):
    code = "customer_not_found"
    status_code = 404
    default_message = _("No such customer.")


class InvalidPhone(CustomerError):
    code = "invalid_phone"
    status_code = 400
    default_message = _("This is not a valid phone number.")


class CardNumberTaken(CustomerError):
    code = "card_number_taken"
    status_code = 409
    default_message = _("This card number belongs to another customer.")


class ExternalIdTaken(CustomerError):
    code = "external_id_taken"
    status_code = 409
    default_message = _("This external id belongs to another customer of the channel.")


class InvalidCustomerData(CustomerError):
    code = "invalid_customer_data"
    status_code = 400
    default_message = _("The customer data is not valid.")


class IdentifierRequired(CustomerError):
    code = "identifier_required"
    status_code = 400
    default_message = _("Give exactly one of phone, card, external_id or email.")


class CustomerMerged(CustomerError):
    code = "customer_merged"
    status_code = 409
    default_message = _("This customer was merged into another one.")


class CustomerAnonymised(CustomerError):
    code = "customer_anonymised"
    status_code = 409
    default_message = _("This customer was anonymised.")


class CustomerBlocked(CustomerError):
    code = "customer_blocked"
    status_code = 409
    default_message = _("This customer is blocked.")


class MembershipChangeInvalid(CustomerError):
    code = "membership_change_invalid"
    status_code = 409
    default_message = _("This membership change is not possible from the customer's current state.")


class MergeIntoSelf(CustomerError):
    code = "merge_into_self"
    status_code = 400
    default_message = _("A customer cannot be merged into itself.")


class SmsCodeNotRequested(CustomerError):
    code = "sms_code_not_requested"
    status_code = 400
    default_message = _("No code was sent to this phone, or it was already used. Request a new one.")


class SmsCodeExpired(CustomerError):
    code = "sms_code_expired"
    status_code = 400
    default_message = _("The code has expired. Request a new one.")


class SmsCodeInvalid(CustomerError):
    code = "sms_code_invalid"
    status_code = 400
    default_message = _("The code is wrong.")


class SmsCodeAttemptsExceeded(CustomerError):
    code = "sms_code_attempts_exceeded"
    status_code = 429
    default_message = _("Too many wrong attempts. Request a new code.")


class SmsResendTooSoon(CustomerError):
    code = "sms_resend_too_soon"
    status_code = 429
    default_message = _("A code was sent moments ago. Wait before asking for another one.")


class SmsDailyLimitReached(CustomerError):
    code = "sms_daily_limit_reached"
    status_code = 429
    default_message = _("Too many codes were sent to this phone today.")


class EmailMissing(CustomerError):
    code = "email_missing"
    status_code = 400
    default_message = _("The customer has no email to validate.")


class EmailTokenInvalid(CustomerError):
    code = "email_token_invalid"
    status_code = 400
    default_message = _("The email confirmation link is not valid.")


class EmailTokenExpired(CustomerError):
    code = "email_token_expired"
    status_code = 400
    default_message = _("The email confirmation link has expired. Ask for a new one.")


class EmailTokenStale(CustomerError):
    code = "email_token_stale"
    status_code = 409
    default_message = _("The customer's email changed after this link was sent. Ask for a new one.")
