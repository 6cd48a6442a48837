"""Orders, their lines and payments (SPEC F-ORD-1 … F-ORD-10).

An order's points are the ledger's: each line that earns has its own lot (``OrderLine.lot``), pending until
the line is delivered (or the order paid, for operation types that unlock on payment); the points spent on an
order are one redemption entry (``OrderLine.redemption``) that cancellations and returns refund from.

A **delivery** is a sub-order (``Order`` of kind ``delivery``) whose ``parent`` is the order it delivers lines
of: the grouping key the personal account shows. A delivered part of a line is split off into its own line
(``split_from``, same ``line_number``), with its share of the line's points.

Rows are written only by ``orders.services``; every change there is one transaction under the order's row lock,
recorded as an ``OrderEvent`` whose operation key makes a repeat harmless.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from phonenumber_field.modelfields import PhoneNumberField

from programmes.models import OperationType

MONEY = {"max_digits": 14, "decimal_places": 2}
POINTS = {"max_digits": 14, "decimal_places": 2}
QUANTITY = {"max_digits": 12, "decimal_places": 3}
ZERO = Decimal("0")


class Order(models.Model):
    class Kind(models.TextChoices):
        ORDER = "order", _("order")
        DELIVERY = "delivery", _("delivery")

    class Status(models.TextChoices):
        PLACED = "placed", _("placed")
        PARTIALLY_DELIVERED = "partially_delivered", _("partially delivered")
        DELIVERED = "delivered", _("delivered")
        PARTIALLY_RETURNED = "partially_returned", _("partially returned")
        RETURNED = "returned", _("returned")
        CANCELLED = "cancelled", _("cancelled")

    class UnlocksOn(models.TextChoices):
        DELIVERY = "delivery", _("delivery")
        PAYMENT = "payment", _("payment")

    channel = models.ForeignKey(
        "integrations.Channel",
        verbose_name=_("source channel"),
        on_delete=models.PROTECT,
        related_name="orders",
        help_text=_("The system the number belongs to: numbers are unique per channel."),
    )
    number = models.CharField(_("number"), max_length=64)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.ORDER)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent order"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="deliveries",
    )
    store = models.ForeignKey(
        "integrations.Store", verbose_name=_("store"), on_delete=models.PROTECT, null=True, blank=True
    )
    seller = models.CharField(_("seller"), max_length=100, blank=True, help_text=_("Staff or external seller id."))
    customer = models.ForeignKey(
        "customers.Customer",
        verbose_name=_("customer"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="orders",
    )
    phone = PhoneNumberField(_("phone"), null=True, blank=True, help_text=_("Of an order without a customer."))
    card_number = models.CharField(_("card number"), max_length=32, blank=True)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.PLACED)
    unlocks_on = models.CharField(
        _("points unlock on"), max_length=10, choices=UnlocksOn.choices, default=UnlocksOn.DELIVERY
    )
    offline = models.BooleanField(_("offline"), default=False, help_text=_("Sent later by a till that was offline."))
    created_at = models.DateTimeField(_("created at"), help_text=_("As reported by the channel."))
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    total_amount = models.DecimalField(_("total amount"), default=ZERO, **MONEY)
    points_redeemed = models.DecimalField(_("points redeemed"), default=ZERO, **POINTS)
    points_to_earn = models.DecimalField(_("points to earn"), default=ZERO, **POINTS)
    hold = models.ForeignKey(
        "points.Hold", verbose_name=_("hold"), on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    request_fingerprint = models.CharField(max_length=64, blank=True, editable=False)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["channel", "number"], name="orders_number_unique_per_channel"),
            models.CheckConstraint(condition=~Q(number=""), name="orders_number_not_empty"),
            models.CheckConstraint(
                condition=Q(kind="order", parent__isnull=True) | Q(kind="delivery", parent__isnull=False),
                name="orders_delivery_has_parent",
            ),
            models.CheckConstraint(condition=Q(points_redeemed__gte=0), name="orders_points_redeemed_non_negative"),
            models.CheckConstraint(condition=Q(points_to_earn__gte=0), name="orders_points_to_earn_non_negative"),
        ]
        indexes = [
            models.Index(fields=["customer", "-created_at"], name="orders_by_customer"),
            models.Index(fields=["phone"], condition=Q(customer__isnull=True), name="orders_anonymous_by_phone"),
            models.Index(fields=["-created_at"], name="orders_by_created"),
            models.Index(fields=["number"], name="orders_by_number"),
            # The admin list filtered by store (and date) or status, newest first (F-STAFF-4); the rare values of
            # its other filters (offline, unlocking on payment) from partial indexes.
            models.Index(fields=["store", "-created_at", "-id"], name="orders_by_store_recent"),
            models.Index(fields=["status", "-created_at", "-id"], name="orders_by_status_recent"),
            models.Index(fields=["-created_at"], condition=Q(offline=True), name="orders_offline_recent"),
            models.Index(fields=["-created_at"], condition=Q(unlocks_on="payment"), name="orders_unlock_on_payment"),
            # The admin search by card: an anonymous order's card (its customer's card is the customer's).
            models.Index(fields=["card_number"], condition=Q(customer__isnull=True), name="orders_anonymous_by_card"),
        ]

    def __str__(self) -> str:
        return self.number


class OrderLine(models.Model):
    class Status(models.TextChoices):
        PLACED = "placed", _("placed")
        DELIVERED = "delivered", _("delivered")
        CANCELLED = "cancelled", _("cancelled")
        RETURNED = "returned", _("returned")

    order = models.ForeignKey(Order, verbose_name=_("order"), on_delete=models.PROTECT, related_name="lines")
    line_number = models.PositiveIntegerField(_("line number"))
    part = models.PositiveSmallIntegerField(
        _("part"), default=0, help_text=_("0 for the line as ordered; 1, 2, … for the parts split off it.")
    )
    split_from = models.ForeignKey(
        "self", verbose_name=_("split from"), on_delete=models.PROTECT, null=True, blank=True, related_name="parts"
    )
    sku = models.CharField(_("SKU"), max_length=64)
    name = models.CharField(pgettext_lazy("title of a thing", "name"), max_length=255, blank=True)
    category = models.CharField(_("category"), max_length=64, blank=True)
    attributes = models.JSONField(_("attributes"), default=dict, blank=True)
    operation_type = models.CharField(
        _("operation type"), max_length=20, choices=OperationType.choices, default=OperationType.PURCHASE
    )
    price = models.DecimalField(_("unit price"), **MONEY)
    discount_percent = models.DecimalField(_("shelf discount, %"), max_digits=5, decimal_places=2, default=ZERO)
    quantity = models.DecimalField(_("quantity"), **QUANTITY)
    amount = models.DecimalField(_("amount"), help_text=_("After the shelf discount."), **MONEY)
    points_redeemed = models.DecimalField(_("points redeemed"), default=ZERO, **POINTS)
    points_to_earn = models.DecimalField(_("points to earn"), default=ZERO, **POINTS)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PLACED)
    delivery = models.ForeignKey(
        Order,
        verbose_name=_("delivery"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="delivered_lines",
    )
    lot = models.ForeignKey(
        "points.Lot", verbose_name=_("points lot"), on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    redemption = models.ForeignKey(
        "points.Entry",
        verbose_name=_("redemption"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    points_unlocked = models.BooleanField(_("points unlocked"), default=False)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("cancelled or returned at"), null=True, blank=True)
    reason = models.TextField(_("reason"), blank=True)

    class Meta:
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")
        ordering = ["line_number", "part"]
        constraints = [
            models.UniqueConstraint(fields=["order", "line_number", "part"], name="orders_line_part_unique"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="orders_line_quantity_positive"),
            models.CheckConstraint(condition=Q(price__gte=0), name="orders_line_price_non_negative"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="orders_line_amount_non_negative"),
            models.CheckConstraint(
                condition=Q(discount_percent__gte=0, discount_percent__lte=100), name="orders_line_discount_percent"
            ),
            models.CheckConstraint(condition=Q(points_redeemed__gte=0), name="orders_line_redeemed_non_negative"),
            models.CheckConstraint(
                condition=Q(points_redeemed__lte=F("amount")), name="orders_line_redeemed_le_amount"
            ),
            models.CheckConstraint(condition=Q(points_to_earn__gte=0), name="orders_line_earn_non_negative"),
            models.CheckConstraint(
                condition=Q(part=0, split_from__isnull=True) | (Q(part__gt=0) & Q(split_from__isnull=False)),
                name="orders_line_part_has_origin",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["placed", "cancelled"]) | Q(delivered_at__isnull=False),
                name="orders_line_delivered_has_date",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["placed", "delivered"]) | Q(closed_at__isnull=False),
                name="orders_line_closed_has_date",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.line_number}.{self.part} {self.sku} x {self.quantity}"


class Payment(models.Model):
    class Method(models.TextChoices):
        CARD = "card", _("card")
        CASH = "cash", _("cash")
        POINTS = "points", _("points")
        GIFT_CERTIFICATE = "gift_certificate", _("gift certificate")
        OTHER = "other", _("other")

    class Status(models.TextChoices):
        PAID = "paid", _("paid")
        REFUNDED = "refunded", _("refunded")

    order = models.ForeignKey(Order, verbose_name=_("order"), on_delete=models.PROTECT, related_name="payments")
    external_id = models.CharField(_("payment id"), max_length=64, help_text=_("As the channel knows it."))
    method = models.CharField(_("method"), max_length=20, choices=Method.choices)
    amount = models.DecimalField(_("amount"), **MONEY)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PAID)
    paid_at = models.DateTimeField(_("paid at"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["paid_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["order", "external_id"], name="orders_payment_unique_per_order"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="orders_payment_amount_positive"),
            models.CheckConstraint(condition=~Q(external_id=""), name="orders_payment_id_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.get_method_display()} {self.amount}"


class OrderEvent(models.Model):
    """One change of an order, by whom and why; its operation key makes a repeated request harmless."""

    class Kind(models.TextChoices):
        PLACE = "place", _("placed")
        DELIVER = "deliver", _("delivered")
        CANCEL = "cancel", _("cancelled")
        RETURN = "return", _("returned")
        PAY = "pay", _("paid")
        MATCH = "match", _("customer attached")

    order = models.ForeignKey(Order, verbose_name=_("order"), on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    operation_key = models.CharField(_("operation key"), max_length=200, unique=True)
    fingerprint = models.CharField(max_length=64, editable=False)
    lines = models.JSONField(_("lines"), default=list, blank=True)
    result = models.ForeignKey(
        Order,
        verbose_name=_("sub-order"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("The delivery this event created."),
    )
    actor_channel = models.ForeignKey(
        "integrations.Channel",
        verbose_name=_("channel"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("staff user"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    reason = models.TextField(_("reason"), blank=True)
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        verbose_name = _("order event")
        verbose_name_plural = _("order events")
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.created_at:%Y-%m-%d %H:%M}"


class Reservation(models.Model):
    """Items a customer booked to see in a showroom (F-ORD-7): the tier's item limit and extra days apply."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("active")
        FULFILLED = "fulfilled", _("fulfilled")
        CANCELLED = "cancelled", _("cancelled")
        EXPIRED = "expired", _("expired")

    channel = models.ForeignKey(
        "integrations.Channel", verbose_name=_("channel"), on_delete=models.PROTECT, related_name="reservations"
    )
    number = models.CharField(_("number"), max_length=64)
    customer = models.ForeignKey(
        "customers.Customer", verbose_name=_("customer"), on_delete=models.PROTECT, related_name="reservations"
    )
    store = models.ForeignKey(
        "integrations.Store", verbose_name=_("store"), on_delete=models.PROTECT, null=True, blank=True
    )
    items = models.JSONField(_("items"), default=list, help_text=_("[{sku, quantity, name}]"))
    item_count = models.PositiveIntegerField(_("items"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(_("created at"))
    expires_at = models.DateTimeField(_("expires at"))
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("reservation")
        verbose_name_plural = _("reservations")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["channel", "number"], name="orders_reservation_number_unique"),
            models.CheckConstraint(condition=Q(item_count__gt=0), name="orders_reservation_has_items"),
            models.CheckConstraint(condition=Q(expires_at__gt=F("created_at")), name="orders_reservation_expiry"),
        ]
        indexes = [
            models.Index(fields=["customer"], condition=Q(status="active"), name="orders_reservation_active"),
        ]

    def __str__(self) -> str:
        return self.number
