from django.utils.translation import gettext_lazy as _

from core.exceptions import ApplicationError


class CustomerExists(ApplicationError):
    code = "customer_exists"
    status_code = 409
    default_message = _("A customer with this phone already exists.")


class CustomerNotFound(ApplicationError):
    code = "customer_not_found"
    status_code = 404
    default_message = _("No such customer.")
