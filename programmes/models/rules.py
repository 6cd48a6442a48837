"""Earning and redemption rules and promotions (SPEC F-EARN-1 … 3, F-RED-1 … 3): data that CRM managers edit.

A rule applies to an order line when it is in force at the calculation's moment (``valid_from`` <= at <
``valid_until``), its rule set is active, and every condition it sets matches the line (an empty condition matches
everything). Rules that have taken effect are not edited: they are ended (``valid_until``) and replaced by a new
rule from that moment, so a calculation can be re-run as of any past date (``programmes.calculator``).

- Earning: the tier's rate, unless earning rules apply; then the one with the highest priority decides (a rate or
  "no points"). Promotions multiply the result; of several, the largest multiplier applies.
- Redemption: each applicable rule is a cap (a share of the line's price, a share of the customer's spendable
  balance, or a prohibition) next to the tier's cap and the product's exclusion; the smallest cap wins per line.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from integrations.models import Channel
from programmes.models.tiers import PERCENT, Programme, Tier, rules_changed


class OperationType(models.TextChoices):
    PURCHASE = "purchase", _("purchase")
    LOAN_INTEREST = "loan_interest", _("loan interest payment")
    PAID_SERVICE = "paid_service", _("other paid service")


class RuleSet(models.Model):
    """A group of rules switched on and off together, e.g. the discount-bracket matrix of earlier years."""

    programme = models.ForeignKey(
        Programme, verbose_name=_("programme"), on_delete=models.CASCADE, related_name="rule_sets"
    )
    code = models.SlugField(_("code"), max_length=50)
    name = models.CharField(pgettext_lazy("title of a thing", "name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    is_active = models.BooleanField(
        _("active"), default=True, help_text=_("Rules of an inactive set never apply, whatever their dates.")
    )

    class Meta:
        verbose_name = _("rule set")
        verbose_name_plural = _("rule sets")
        ordering = ["programme", "code"]
        constraints = [
            models.UniqueConstraint(fields=["programme", "code"], name="programmes_rule_set_code_unique"),
            models.CheckConstraint(condition=~Q(code=""), name="programmes_rule_set_code_not_empty"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        super().save(*args, **kwargs)
        rules_changed(self.programme_id)


class RuleConditions(models.Model):
    """When a rule (or promotion) applies: its validity and conditions on the line, the customer and the sale."""

    name = models.CharField(pgettext_lazy("title of a thing", "name"), max_length=200)
    priority = models.SmallIntegerField(
        _("priority"), default=0, help_text=_("Of several applicable earning rules, the highest priority decides.")
    )
    valid_from = models.DateTimeField(_("valid from"))
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True, help_text=_("Empty: open-ended."))
    tiers = models.ManyToManyField(
        Tier, verbose_name=_("tiers"), blank=True, related_name="+", help_text=_("Empty: every tier.")
    )
    channel_kinds = models.JSONField(
        _("channels"), default=list, blank=True, help_text=_("Kinds of sales channel. Empty: every channel.")
    )
    stores = models.ManyToManyField(
        "integrations.Store", verbose_name=_("stores"), blank=True, related_name="+", help_text=_("Empty: every store.")
    )
    categories = models.ManyToManyField(
        "catalog.Category",
        verbose_name=_("categories"),
        blank=True,
        related_name="+",
        help_text=_("A category includes everything below it. Empty: every category."),
    )
    new_arrival = models.BooleanField(
        _("new arrivals"), null=True, blank=True, help_text=_("Yes: only new arrivals; no: all but them; empty: any.")
    )
    operation_types = models.JSONField(
        _("operation types"), default=list, blank=True, help_text=_("Empty: every operation type.")
    )
    note = models.TextField(_("note"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        super().save(*args, **kwargs)
        rules_changed(self.programme_id_for_cache)

    def clean(self) -> None:
        errors = {}
        if self.valid_until is not None and self.valid_from is not None and self.valid_until <= self.valid_from:
            errors["valid_until"] = _("The end must be after the start.")
        unknown = set(self.channel_kinds or []) - set(Channel.Kind.values)
        if unknown:
            errors["channel_kinds"] = _("Unknown channel kinds: %(kinds)s.") % {"kinds": ", ".join(sorted(unknown))}
        unknown = set(self.operation_types or []) - set(OperationType.values)
        if unknown:
            errors["operation_types"] = _("Unknown operation types: %(types)s.") % {"types": ", ".join(sorted(unknown))}
        if errors:
            raise ValidationError(errors)

    @property
    def programme_id_for_cache(self) -> int:
        raise NotImplementedError


def _validity_constraint(name: str) -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=Q(valid_until__isnull=True) | Q(valid_until__gt=models.F("valid_from")),
        name=name,
        violation_error_message=_("The end must be after the start."),
    )


class EarningRule(RuleConditions):
    class Kind(models.TextChoices):
        RATE = "rate", _("earn this percentage")
        NO_EARNING = "no_earning", _("earn nothing")

    rule_set = models.ForeignKey(
        RuleSet, verbose_name=_("rule set"), on_delete=models.CASCADE, related_name="earning_rules"
    )
    kind = models.CharField(_("effect"), max_length=20, choices=Kind.choices, default=Kind.RATE)
    rate_percent = models.DecimalField(
        _("rate, %"), **PERCENT, null=True, blank=True, help_text=_("Replaces the tier's earning rate.")
    )

    class Meta:
        verbose_name = _("earning rule")
        verbose_name_plural = _("earning rules")
        ordering = ["rule_set", "-priority", "valid_from", "pk"]
        constraints = [
            _validity_constraint("programmes_earning_rule_validity"),
            models.CheckConstraint(
                condition=Q(kind="rate", rate_percent__isnull=False, rate_percent__gte=0, rate_percent__lte=100)
                | Q(kind="no_earning", rate_percent__isnull=True),
                name="programmes_earning_rule_rate",
                violation_error_message=_("A rate rule needs a percentage between 0 and 100; "
                                          "a no-earning rule has none."),
            ),
        ]  # fmt: skip

    @property
    def programme_id_for_cache(self) -> int:
        return RuleSet.objects.values_list("programme_id", flat=True).get(pk=self.rule_set_id)


class RedemptionRule(RuleConditions):
    class Kind(models.TextChoices):
        PRICE_SHARE = "price_share", _("share of the line's price")
        BALANCE_SHARE = "balance_share", _("share of the spendable balance")
        FORBIDDEN = "forbidden", _("no points may be spent")

    rule_set = models.ForeignKey(
        RuleSet, verbose_name=_("rule set"), on_delete=models.CASCADE, related_name="redemption_rules"
    )
    discount_from = models.DecimalField(
        _("shelf discount from, %"), **PERCENT, null=True, blank=True, help_text=_("Inclusive. Empty: any.")
    )
    discount_to = models.DecimalField(
        _("shelf discount below, %"), **PERCENT, null=True, blank=True, help_text=_("Exclusive. Empty: any.")
    )
    kind = models.CharField(_("cap"), max_length=20, choices=Kind.choices, default=Kind.PRICE_SHARE)
    percent = models.DecimalField(_("percentage"), **PERCENT, null=True, blank=True)

    class Meta:
        verbose_name = _("redemption rule")
        verbose_name_plural = _("redemption rules")
        ordering = ["rule_set", "discount_from", "valid_from", "pk"]
        constraints = [
            _validity_constraint("programmes_redemption_rule_validity"),
            models.CheckConstraint(
                condition=Q(
                    kind__in=["price_share", "balance_share"], percent__isnull=False, percent__gte=0, percent__lte=100
                )
                | Q(kind="forbidden", percent__isnull=True),
                name="programmes_redemption_rule_percent",
                violation_error_message=_("A share cap needs a percentage between 0 and 100; "
                                          "a prohibition has none."),
            ),
            models.CheckConstraint(
                condition=Q(discount_from__isnull=True) | Q(discount_to__isnull=True)
                | Q(discount_to__gt=models.F("discount_from")),
                name="programmes_redemption_rule_bracket",
                violation_error_message=_("The discount bracket must end above its start."),
            ),
            models.CheckConstraint(
                condition=(Q(discount_from__isnull=True) | Q(discount_from__gte=0, discount_from__lte=100))
                & (Q(discount_to__isnull=True) | Q(discount_to__gte=0, discount_to__lte=100)),
                name="programmes_redemption_rule_bracket_percent",
            ),
        ]  # fmt: skip

    @property
    def programme_id_for_cache(self) -> int:
        return RuleSet.objects.values_list("programme_id", flat=True).get(pk=self.rule_set_id)


class Promotion(RuleConditions):
    """Multiplies the points a line earns (double points) while it runs (SPEC F-EARN-3, F-CMP-4)."""

    programme = models.ForeignKey(
        Programme, verbose_name=_("programme"), on_delete=models.CASCADE, related_name="promotions"
    )
    multiplier = models.DecimalField(_("multiplier"), max_digits=5, decimal_places=2, help_text=_("2 = double points."))
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("promotion")
        verbose_name_plural = _("promotions")
        ordering = ["-valid_from", "pk"]
        constraints = [
            _validity_constraint("programmes_promotion_validity"),
            models.CheckConstraint(
                condition=Q(valid_until__isnull=False),
                name="programmes_promotion_has_end",
                violation_error_message=_("A promotion needs an end."),
            ),
            models.CheckConstraint(
                condition=Q(multiplier__gt=0),
                name="programmes_promotion_multiplier_positive",
                violation_error_message=_("The multiplier must be above 0."),
            ),
        ]

    @property
    def programme_id_for_cache(self) -> int:
        return self.programme_id
