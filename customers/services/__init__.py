"""Customer services: the only code that changes customers, their ids, consents and membership."""

from customers.services.anonymise import customer_anonymise
from customers.services.consents import consent_set
from customers.services.email import email_validation_confirm, email_validation_request
from customers.services.membership import customer_balance_type, customer_block, customer_join, customer_unblock
from customers.services.merge import customer_merge, customer_merged, customer_merging
from customers.services.profile import customer_create, customer_external_id_set, customer_update
from customers.services.registration import sms_code_confirm, sms_code_request

__all__ = [
    "consent_set",
    "customer_anonymise",
    "customer_balance_type",
    "customer_block",
    "customer_create",
    "customer_external_id_set",
    "customer_join",
    "customer_merge",
    "customer_merged",
    "customer_merging",
    "customer_unblock",
    "customer_update",
    "email_validation_confirm",
    "email_validation_request",
    "sms_code_confirm",
    "sms_code_request",
]
