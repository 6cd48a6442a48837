from django.utils.translation import gettext_lazy as _

from core.exceptions import ApplicationError


class CatalogError(ApplicationError):
    code = "catalog_error"
    status_code = 400
    default_message = _("The catalogue operation is not possible.")


class CatalogInvalid(CatalogError):
    """``fields`` names each bad item and field: ``{"products.3.category": [{"code", "message"}]}``."""

    code = "catalog_invalid"
    status_code = 400
    default_message = _("Some catalogue items are invalid; nothing was changed.")


class CatalogTooLarge(CatalogError):
    code = "catalog_too_large"
    status_code = 400
    default_message = _("Too many catalogue items in one request.")


class ProductNotFound(CatalogError):
    code = "product_not_found"
    status_code = 404
    default_message = _("No product with this SKU.")
