"""Loyalty programmes and their tiers (SPEC F-TIER-1 … 6).

A ``Programme`` (retail, B2B) has its own balance type and ordered ``Tier``s; rank 0 is the entry tier every
customer of the programme's kind starts in. A customer's tier is qualified by purchases net of returns
(``PurchaseRecord``, written by orders through ``purchase_record``) over a rolling window. ``CustomerTier`` is the
current state, one row per customer and programme; ``TierChange`` is its append-only history.

Early access to new arrivals (F-TIER-4) is a rule the site applies with ``GET /api/v1/customers/{id}/tier``
(there is no ``/catalog/visible`` endpoint): a product is a new arrival of age ``now - arrival_date`` (the arrival
date taken at 00:00 in the business timezone). While that age is below the largest ``early_access_hours`` of the
programme's tiers, the product is visible only to customers whose tier has ``early_access_hours`` >= its age; older
products are visible to everybody. Anonymous visitors and tiers with 0 hours see a new arrival only once it is older
than the largest window. Example (demo data): Gold and Platinum have 48 h, so an item that arrived yesterday is
shown to Gold and Platinum customers only, and to everybody from the third day on.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

MONEY = {"max_digits": 14, "decimal_places": 2}
PERCENT = {"max_digits": 5, "decimal_places": 2}


class Rounding(models.TextChoices):
    DOWN = "down", _("down to whole points")
    HALF_UP = "half_up", _("to the nearest whole point")
    CENTS = "cents", _("down to hundredths")


class Programme(models.Model):
    class CustomerKind(models.TextChoices):
        # The values of customers.models.Customer.Kind: one programme per kind of customer.
        RETAIL = "retail", _("retail")
        B2B = "b2b", _("B2B")

    code = models.SlugField(_("code"), max_length=30, unique=True)
    name = models.CharField(pgettext_lazy("title of a thing", "name"), max_length=100)
    customer_kind = models.CharField(_("customer kind"), max_length=10, choices=CustomerKind.choices, unique=True)
    balance_type = models.ForeignKey(
        "points.BalanceType", verbose_name=_("balance type"), on_delete=models.PROTECT, related_name="programmes"
    )
    qualification_window_months = models.PositiveSmallIntegerField(
        _("qualification window, months"),
        default=12,
        help_text=_("Purchases net of returns over this many past months qualify a customer for a tier."),
    )
    downgrade_grace_days = models.PositiveSmallIntegerField(
        _("downgrade grace, days"),
        default=30,
        help_text=_(
            "After falling below the tier's threshold a customer keeps the tier this many days before the "
            "recalculation downgrades them."
        ),
    )
    rounding = models.CharField(
        _("rounding of earned points"),
        max_length=10,
        choices=Rounding.choices,
        default=Rounding.DOWN,
        help_text=_("Applied per order line. Redeemable maximums always round down to whole points."),
    )
    earn_on_points_paid = models.BooleanField(
        _("earn on the part paid in points"),
        default=False,
        help_text=_("Off: points are earned only on the part of a line paid with money."),
    )
    unlock_on_payment = models.JSONField(
        _("points unlock on payment for"),
        default=list,
        blank=True,
        help_text=_(
            "Operation types whose points become spendable when the order is paid rather than when it is "
            "delivered, e.g. a pawnshop's interest payments (purchase, loan_interest, paid_service)."
        ),
    )
    rules_version = models.UUIDField(
        _("rules version"),
        default=uuid.uuid4,
        editable=False,
        help_text=_("Renewed by every change of the programme's tiers, rules and promotions (a cache key)."),
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("programme")
        verbose_name_plural = _("programmes")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=~Q(code=""), name="programmes_programme_code_not_empty"),
            models.CheckConstraint(
                condition=Q(qualification_window_months__gte=1), name="programmes_programme_window_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Tier(models.Model):
    programme = models.ForeignKey(
        Programme, verbose_name=_("programme"), on_delete=models.CASCADE, related_name="tiers"
    )
    code = models.SlugField(_("code"), max_length=30)
    name = models.CharField(pgettext_lazy("title of a thing", "name"), max_length=100)
    rank = models.PositiveSmallIntegerField(_("rank"), help_text=_("0 is the entry tier; higher is better."))
    qualification_threshold = models.DecimalField(
        _("qualification threshold"),
        **MONEY,
        default=Decimal("0"),
        help_text=_("Minimum purchases net of returns within the qualification window. 0 for the entry tier."),
    )
    earn_rate_percent = models.DecimalField(_("earning rate, %"), **PERCENT, default=Decimal("0"))
    max_redemption_percent = models.DecimalField(
        _("maximum redemption, %"),
        **PERCENT,
        default=Decimal("0"),
        help_text=_("The largest share of a price that may be paid in points."),
    )
    welcome_bonus = models.DecimalField(_("welcome bonus, points"), **MONEY, default=Decimal("0"))
    reservation_days_bonus = models.PositiveSmallIntegerField(_("extra reservation days"), default=0)
    reservation_item_limit = models.PositiveSmallIntegerField(_("reservation item limit"), default=5)
    early_access_hours = models.PositiveSmallIntegerField(
        _("early access to new arrivals, hours"),
        default=0,
        help_text=_("New arrivals younger than this are visible to this tier before the others."),
    )
    loan_limit_multiplier = models.DecimalField(_("loan limit multiplier"), **PERCENT, default=Decimal("1"))
    extra_perks = models.JSONField(_("other perks"), default=dict, blank=True)

    class Meta:
        verbose_name = _("tier")
        verbose_name_plural = _("tiers")
        ordering = ["programme", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["programme", "code"], name="programmes_tier_code_unique"),
            models.UniqueConstraint(fields=["programme", "rank"], name="programmes_tier_rank_unique"),
            models.CheckConstraint(condition=~Q(code=""), name="programmes_tier_code_not_empty"),
            models.CheckConstraint(
                condition=Q(qualification_threshold__gte=0), name="programmes_tier_threshold_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(rank__gt=0) | Q(qualification_threshold=0),
                name="programmes_tier_entry_threshold_zero",
                violation_error_message=_("The entry tier (rank 0) must have a threshold of 0."),
            ),
            models.CheckConstraint(
                condition=Q(earn_rate_percent__gte=0, earn_rate_percent__lte=100),
                name="programmes_tier_earn_rate_percent",
                violation_error_message=_("The earning rate is a percentage between 0 and 100."),
            ),
            models.CheckConstraint(
                condition=Q(max_redemption_percent__gte=0, max_redemption_percent__lte=100),
                name="programmes_tier_max_redemption_percent",
                violation_error_message=_("The maximum redemption is a percentage between 0 and 100."),
            ),
            models.CheckConstraint(condition=Q(welcome_bonus__gte=0), name="programmes_tier_welcome_not_negative"),
            models.CheckConstraint(
                condition=Q(loan_limit_multiplier__gte=0), name="programmes_tier_loan_multiplier_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        # Keep the terms this tier had until now, so "as of" calculations of the past use them.
        before = Tier.objects.filter(pk=self.pk).values("earn_rate_percent", "max_redemption_percent").first()
        super().save(*args, **kwargs)
        if before and (before["earn_rate_percent"], before["max_redemption_percent"]) != (
            self.earn_rate_percent,
            self.max_redemption_percent,
        ):
            TierTerms.objects.create(tier=self, valid_until=timezone.now(), **before)
        rules_changed(self.programme_id)

    @property
    def perks(self) -> dict:
        return {
            "reservation_days_bonus": self.reservation_days_bonus,
            "reservation_item_limit": self.reservation_item_limit,
            "early_access_hours": self.early_access_hours,
            "loan_limit_multiplier": self.loan_limit_multiplier,
            "extra": self.extra_perks,
        }


class TierTerms(models.Model):
    """The earning rate and redemption cap a tier had until ``valid_until``: written when they change, so a cart
    can be recalculated as of a past date (``programmes.calculator``)."""

    tier = models.ForeignKey(Tier, verbose_name=_("tier"), on_delete=models.CASCADE, related_name="past_terms")
    earn_rate_percent = models.DecimalField(_("earning rate, %"), **PERCENT)
    max_redemption_percent = models.DecimalField(_("maximum redemption, %"), **PERCENT)
    valid_until = models.DateTimeField(_("valid until"))

    class Meta:
        verbose_name = _("past tier terms")
        verbose_name_plural = _("past tier terms")
        ordering = ["tier", "valid_until"]
        indexes = [models.Index(fields=["tier", "valid_until"], name="programmes_tier_terms_until")]

    def __str__(self) -> str:
        return f"{self.tier_id} until {self.valid_until:%Y-%m-%d %H:%M}"


def rules_changed(programme_id: int) -> None:
    """Give the programme a new ``rules_version`` in the current transaction, so rulebooks cached under the old one
    are not used again (``programmes.rulebook``). Every save of a tier, rule set, rule or promotion calls it. A
    random value, not a counter: a rolled-back change must not leave a version number to be reused."""
    Programme.objects.filter(pk=programme_id).update(rules_version=uuid.uuid4())


class PurchaseRecord(models.Model):
    """One confirmed purchase (positive) or return (negative) counting towards tier qualification. Written by
    orders through ``purchase_record``; idempotent by (programme, source_type, source_id)."""

    customer = models.ForeignKey(
        "customers.Customer", verbose_name=_("customer"), on_delete=models.PROTECT, related_name="purchase_records"
    )
    programme = models.ForeignKey(
        Programme, verbose_name=_("programme"), on_delete=models.PROTECT, related_name="purchase_records"
    )
    amount = models.DecimalField(_("amount"), **MONEY, help_text=_("Negative for a return."))
    occurred_at = models.DateTimeField(_("occurred at"))
    source_type = models.CharField(_("source type"), max_length=30)
    source_id = models.CharField(_("source id"), max_length=64)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("purchase record")
        verbose_name_plural = _("purchase records")
        ordering = ["-occurred_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["programme", "source_type", "source_id"], name="programmes_purchase_source_unique"
            ),
            models.CheckConstraint(condition=~Q(source_type=""), name="programmes_purchase_source_type_not_empty"),
            models.CheckConstraint(condition=~Q(source_id=""), name="programmes_purchase_source_id_not_empty"),
        ]
        indexes = [
            models.Index(fields=["programme", "customer", "occurred_at"], name="programmes_purchase_window"),
        ]

    def __str__(self) -> str:
        return f"{self.source_type}:{self.source_id} {self.amount}"


class CustomerTier(models.Model):
    """A customer's current tier in a programme. No row means the entry tier (nothing written until the first
    purchase, manual assignment or recalculation). Changed only by the services in ``programmes.services``."""

    customer = models.ForeignKey(
        "customers.Customer", verbose_name=_("customer"), on_delete=models.CASCADE, related_name="tiers"
    )
    programme = models.ForeignKey(
        Programme, verbose_name=_("programme"), on_delete=models.PROTECT, related_name="customer_tiers"
    )
    tier = models.ForeignKey(Tier, verbose_name=_("tier"), on_delete=models.PROTECT, related_name="customer_tiers")
    since = models.DateTimeField(_("since"))
    manual = models.BooleanField(_("assigned manually"), default=False)
    manual_until = models.DateTimeField(
        _("manual assignment until"), null=True, blank=True, help_text=_("Empty: until changed by staff.")
    )
    below_threshold_since = models.DateTimeField(
        _("below threshold since"),
        null=True,
        blank=True,
        help_text=_("When the recalculation first found the purchases below the tier's threshold."),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("customer tier")
        verbose_name_plural = _("customer tiers")
        ordering = ["customer_id"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "programme"], name="programmes_customer_tier_unique"),
            models.CheckConstraint(
                condition=Q(manual=True) | Q(manual_until__isnull=True), name="programmes_customer_tier_until_manual"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.tier}"

    def manual_active(self, at) -> bool:
        return self.manual and (self.manual_until is None or self.manual_until > at)


class TierChange(models.Model):
    """Append-only history of customer tiers, with the reason of each change."""

    class Reason(models.TextChoices):
        INITIAL = "initial", _("initial")
        UPGRADE = "upgrade", _("upgrade")
        DOWNGRADE = "downgrade", _("downgrade")
        MANUAL = "manual", _("manual assignment")
        MANUAL_EXPIRED = "manual_expired", _("manual assignment expired")

    customer = models.ForeignKey(
        "customers.Customer", verbose_name=_("customer"), on_delete=models.PROTECT, related_name="tier_changes"
    )
    programme = models.ForeignKey(Programme, verbose_name=_("programme"), on_delete=models.PROTECT, related_name="+")
    from_tier = models.ForeignKey(
        Tier, verbose_name=_("from tier"), on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    to_tier = models.ForeignKey(Tier, verbose_name=_("to tier"), on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(_("reason"), max_length=20, choices=Reason.choices)
    note = models.TextField(_("note"), blank=True)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by staff user"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_channel = models.ForeignKey(
        "integrations.Channel",
        verbose_name=_("by channel"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        verbose_name = _("tier change")
        verbose_name_plural = _("tier changes")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["customer", "created_at"], name="programmes_change_customer")]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.from_tier_id} → {self.to_tier_id} ({self.reason})"
