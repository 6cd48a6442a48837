from django.utils.translation import gettext_lazy as _

from core.exceptions import ApplicationError


class OrderError(ApplicationError):
    code = "order_error"
    status_code = 400
    default_message = _("The order operation is not possible.")


class OrderInvalid(OrderError):
    """``fields`` names each bad field: ``{"lines.1.quantity": [{"code", "message"}]}``."""

    code = "order_invalid"
    status_code = 400
    default_message = _("The order is invalid.")


class OrderNotFound(OrderError):
    code = "order_not_found"
    status_code = 404
    default_message = _("No such order.")


class OrderExists(OrderError):
    code = "order_exists"
    status_code = 409
    default_message = _("An order with this number was already placed with other data.")


class OperationConflict(OrderError):
    code = "order_operation_conflict"
    status_code = 422
    default_message = _("This operation key was already used for a different operation on orders.")


class PriceChanged(OrderError):
    code = "price_changed"
    status_code = 409
    default_message = _("The order's prices differ from the cart calculation it refers to: calculate the cart again.")


class CalculationInvalid(OrderError):
    code = "calculation_invalid"
    status_code = 400
    default_message = _("The cart calculation reference is not valid or has expired: calculate the cart again.")


class OrderLineUnknown(OrderError):
    code = "order_line_unknown"
    status_code = 409
    default_message = _("The order has no such line.")


class OrderLineNotPlaced(OrderError):
    code = "order_line_not_placed"
    status_code = 409
    default_message = _("Only lines not yet delivered or cancelled can be delivered or cancelled.")


class OrderLineNotDelivered(OrderError):
    code = "order_line_not_delivered"
    status_code = 409
    default_message = _("Only delivered lines can be returned.")


class QuantityExceeded(OrderError):
    code = "order_line_quantity_exceeded"
    status_code = 409
    default_message = _("The quantity is more than the line has left in that status.")


class NothingToCancel(OrderError):
    code = "order_nothing_to_cancel"
    status_code = 409
    default_message = _("The order has no lines left to cancel.")


class OfflineRedemptionNotHeld(OrderError):
    code = "offline_redemption_not_held"
    status_code = 422
    default_message = _("An offline order can spend points only through a hold made before the till went offline.")


class HoldNotForCustomer(OrderError):
    code = "hold_not_for_customer"
    status_code = 409
    default_message = _("The hold belongs to another customer.")


class RedemptionNeedsCustomer(OrderError):
    code = "redemption_needs_customer"
    status_code = 422
    default_message = _("Points can be spent only on an order of a known customer.")


class CustomerAlreadyAttached(OrderError):
    code = "order_customer_attached"
    status_code = 409
    default_message = _("The order already belongs to a customer.")


class PaymentExists(OrderError):
    code = "payment_exists"
    status_code = 409
    default_message = _("A payment with this id was already recorded with other data.")


class ReservationLimitExceeded(OrderError):
    code = "reservation_item_limit"
    status_code = 422
    default_message = _("The customer's tier allows fewer reserved items.")


class ReservationNotActive(OrderError):
    code = "reservation_not_active"
    status_code = 409
    default_message = _("The reservation is no longer active.")


class ReservationNotFound(OrderError):
    code = "reservation_not_found"
    status_code = 404
    default_message = _("No such reservation.")


class ReasonRequired(OrderError):
    code = "order_reason_required"
    status_code = 400
    default_message = _("Staff must give a reason.")


class ReservationExists(OrderError):
    code = "reservation_exists"
    status_code = 409
    default_message = _("A reservation with this number was already made with other data.")
