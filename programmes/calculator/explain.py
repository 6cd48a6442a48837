"""The calculator's explanations: a machine-readable code, the rule behind it, and a sentence in the active
language (English or Russian) for the till, the site and the admin."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.utils.translation import gettext as _


@dataclass(frozen=True)
class RuleRef:
    type: str  # tier, earning_rule, redemption_rule, promotion
    id: int
    name: str


@dataclass(frozen=True)
class Explanation:
    code: str
    text: str
    value: Decimal | None = None  # the cap in points, the rate in percent or the multiplier
    rule: RuleRef | None = None


def _n(value: Decimal) -> str:
    """A number as people write it: 20, 7.5, 1250.50."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


# --- earning -------------------------------------------------------------------------------------------------


def tier_rate(tier, rate: Decimal) -> Explanation:
    return Explanation(
        "tier_rate",
        _("%(rate)s%% — the earning rate of the %(tier)s tier") % {"rate": _n(rate), "tier": tier.name},
        rate,
        RuleRef("tier", tier.pk, tier.name),
    )


def earning_rule_rate(rule, rate: Decimal) -> Explanation:
    return Explanation(
        "earning_rule",
        _("%(rate)s%% by the rule “%(rule)s”") % {"rate": _n(rate), "rule": rule.name},
        rate,
        RuleRef("earning_rule", rule.id, rule.name),
    )


def earning_rule_none(rule) -> Explanation:
    return Explanation(
        "earning_rule_no_points",
        _("No points by the rule “%(rule)s”") % {"rule": rule.name},
        Decimal("0"),
        RuleRef("earning_rule", rule.id, rule.name),
    )


def product_excluded_from_earning() -> Explanation:
    return Explanation("product_excluded_from_earning", _("No points: the product is excluded from earning"))


def promotion(promo) -> Explanation:
    return Explanation(
        "promotion",
        _("%(multiplier)s times the points by the promotion “%(promotion)s”")
        % {"multiplier": _n(promo.multiplier), "promotion": promo.name},
        promo.multiplier,
        RuleRef("promotion", promo.id, promo.name),
    )


def paid_in_points(base: Decimal, redeemed: Decimal) -> Explanation:
    return Explanation(
        "paid_in_points_not_earning",
        _("Earned on %(base)s: the %(points)s paid in points earn nothing")
        % {"base": _n(base), "points": _n(redeemed)},
        base,
    )


def rounded(rounding_label: str) -> Explanation:
    return Explanation("rounding", _("Rounded %(how)s") % {"how": rounding_label})


# --- redemption ----------------------------------------------------------------------------------------------


def tier_cap(tier, percent: Decimal, cap: Decimal) -> Explanation:
    return Explanation(
        "tier_cap",
        _("Up to %(percent)s%% of the price for the %(tier)s tier") % {"percent": _n(percent), "tier": tier.name},
        cap,
        RuleRef("tier", tier.pk, tier.name),
    )


def rule_price_share(rule, cap: Decimal) -> Explanation:
    return Explanation(
        "rule_price_share",
        _("Up to %(percent)s%% of the price by the rule “%(rule)s”") % {"percent": _n(rule.percent), "rule": rule.name},
        cap,
        RuleRef("redemption_rule", rule.id, rule.name),
    )


def rule_balance_share(rule, balance: Decimal, cap: Decimal) -> Explanation:
    return Explanation(
        "rule_balance_share",
        _("Up to %(percent)s%% of the spendable balance of %(balance)s by the rule “%(rule)s”")
        % {"percent": _n(rule.percent), "balance": _n(balance), "rule": rule.name},
        cap,
        RuleRef("redemption_rule", rule.id, rule.name),
    )


def rule_forbidden(rule) -> Explanation:
    return Explanation(
        "rule_forbidden",
        _("Points may not be spent by the rule “%(rule)s”") % {"rule": rule.name},
        Decimal("0"),
        RuleRef("redemption_rule", rule.id, rule.name),
    )


def product_excluded_from_redemption() -> Explanation:
    return Explanation("product_excluded_from_redemption", _("Points may not be spent on this product"), Decimal("0"))


def spendable_balance(balance: Decimal) -> Explanation:
    return Explanation(
        "spendable_balance", _("The customer can spend %(balance)s points") % {"balance": _n(balance)}, balance
    )


def anonymous() -> Explanation:
    return Explanation("anonymous", _("Points can be spent only by an identified member"), Decimal("0"))


def not_a_member() -> Explanation:
    return Explanation("not_a_member", _("Points can be spent after joining the programme"), Decimal("0"))


def blocked() -> Explanation:
    return Explanation(
        "customer_blocked", _("The customer's points cannot be spent: the card is blocked"), Decimal("0")
    )
