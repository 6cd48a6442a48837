"""Contradictory rules of a programme (the admin's validation): pairs of rules that can apply to the same order line
at the same time where the outcome is decided by a tie-break the manager probably did not mean. Reads only.

- Earning: two rules of active rule sets with the same priority, overlapping validity, conditions that can match the
  same line and different effects (kind or rate). The calculator then takes the one that started last — the manager
  should say which wins by giving it a higher priority. A warning.
- Redemption: a prohibition and a cap that can apply to the same line (conditions, discount brackets and validity
  overlap) — the cap never applies there; or, in one rule set, overlapping discount brackets with different caps — a
  bracket matrix with overlapping rows. The smallest cap wins in both cases, but a manager defining a matrix usually
  made a mistake. A warning.
- Promotions: two active promotions that can apply to the same line at the same time. They do not add up: the largest
  multiplier applies. For information.

Conditions overlap when each of them does: an empty condition is "all"; sets (tiers, channels, stores, operation
types) intersect; the new-arrival flags are compatible; of the category lists, one category of each is the other or
its ancestor (``Category.path``). Only rules still in force or to come at ``at`` are compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from itertools import combinations

from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from catalog.models import PATH_SEPARATOR
from programmes.models import EarningRule, Programme, Promotion, RedemptionRule

Rule = EarningRule | RedemptionRule | Promotion

WARNING = "warning"
INFO = "info"
SEVERITY_LABELS = {WARNING: gettext_lazy("warning"), INFO: gettext_lazy("information")}

EARNING_CONTRADICTION = "earning_contradiction"
PROHIBITION_AND_CAP = "redemption_prohibition_and_cap"
BRACKET_CAPS = "redemption_bracket_caps"
PROMOTIONS_OVERLAP = "promotions_overlap"


@dataclass(frozen=True)
class Conflict:
    code: str
    severity: str  # WARNING or INFO
    first: Rule
    second: Rule
    message: str  # in the active language

    @property
    def severity_label(self) -> str:
        return str(SEVERITY_LABELS[self.severity])

    def involves(self, rule: Rule) -> bool:
        return any(type(other) is type(rule) and other.pk == rule.pk for other in (self.first, self.second))


def rules_conflicts(*, programme: Programme, at: datetime | None = None) -> list[Conflict]:
    """The programme's conflicts among rules in force at ``at`` (now) or starting later: warnings first. Twelve
    queries whatever the number of rules."""
    at = at or timezone.now()
    earning = list(_current(EarningRule.objects.filter(rule_set__programme=programme, rule_set__is_active=True), at))
    redemption = list(
        _current(RedemptionRule.objects.filter(rule_set__programme=programme, rule_set__is_active=True), at)
    )
    promotions = list(_current(Promotion.objects.filter(programme=programme, is_active=True), at))
    conflicts = [
        *_earning_conflicts(earning),
        *_redemption_conflicts(redemption),
        *_promotion_conflicts(promotions),
    ]
    return sorted(conflicts, key=lambda c: (c.severity != WARNING, c.code, c.first.pk, c.second.pk))


def rule_conflicts(*, rule: Rule, at: datetime | None = None) -> list[Conflict]:
    """The conflicts ``rule`` is part of (none when its rule set or the promotion is inactive)."""
    programme = rule.programme if isinstance(rule, Promotion) else rule.rule_set.programme
    return [conflict for conflict in rules_conflicts(programme=programme, at=at) if conflict.involves(rule)]


def _current(queryset: QuerySet, at: datetime) -> QuerySet:
    return (
        queryset.filter(Q(valid_until__isnull=True) | Q(valid_until__gt=at))
        .prefetch_related("tiers", "stores", "categories")
        .order_by("pk")
    )


# --- overlaps ----------------------------------------------------------------------------------------------------


def _sets_overlap(first: set, second: set) -> bool:
    return not first or not second or not first.isdisjoint(second)


def _paths_overlap(first: set[str], second: set[str]) -> bool:
    """Some category of one list is a category of the other or below it (empty: every category)."""
    if not first or not second:
        return True
    return any(
        a == b or a.startswith(b + PATH_SEPARATOR) or b.startswith(a + PATH_SEPARATOR) for a in first for b in second
    )


def _windows_overlap(first: Rule, second: Rule) -> bool:
    return (second.valid_until is None or first.valid_from < second.valid_until) and (
        first.valid_until is None or second.valid_from < first.valid_until
    )


def _conditions_overlap(first: Rule, second: Rule) -> bool:
    return (
        _windows_overlap(first, second)
        and _sets_overlap({tier.pk for tier in first.tiers.all()}, {tier.pk for tier in second.tiers.all()})
        and _sets_overlap(set(first.channel_kinds or ()), set(second.channel_kinds or ()))
        and _sets_overlap({store.pk for store in first.stores.all()}, {store.pk for store in second.stores.all()})
        and _paths_overlap({c.path for c in first.categories.all()}, {c.path for c in second.categories.all()})
        and (first.new_arrival is None or second.new_arrival is None or first.new_arrival == second.new_arrival)
        and _sets_overlap(set(first.operation_types or ()), set(second.operation_types or ()))
    )


_NO_BOUND = Decimal("1000")


def _has_bracket(rule: RedemptionRule) -> bool:
    return rule.discount_from is not None or rule.discount_to is not None


def _brackets_overlap(first: RedemptionRule, second: RedemptionRule) -> bool:
    low = max(first.discount_from or 0, second.discount_from or 0)
    high = min(
        first.discount_to if first.discount_to is not None else _NO_BOUND,
        second.discount_to if second.discount_to is not None else _NO_BOUND,
    )
    return low < high


# --- effects, in words -------------------------------------------------------------------------------------------


def _number(value: Decimal) -> str:
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def earning_effect(rule: EarningRule) -> str:
    if rule.kind == EarningRule.Kind.NO_EARNING:
        return _("no points")
    return _("%(rate)s%%") % {"rate": _number(rule.rate_percent)} if rule.rate_percent is not None else "—"


def redemption_effect(rule: RedemptionRule) -> str:
    if rule.kind == RedemptionRule.Kind.FORBIDDEN:
        return _("no points may be spent")
    if rule.percent is None:
        return "—"
    if rule.kind == RedemptionRule.Kind.BALANCE_SHARE:
        return _("up to %(percent)s%% of the balance") % {"percent": _number(rule.percent)}
    return _("up to %(percent)s%% of the price") % {"percent": _number(rule.percent)}


def promotion_effect(promotion: Promotion) -> str:
    return _("×%(multiplier)s") % {"multiplier": _number(promotion.multiplier)}  # noqa: RUF001


# --- the three kinds ---------------------------------------------------------------------------------------------


def _earning_conflicts(rules: list[EarningRule]) -> list[Conflict]:
    conflicts = []
    for first, second in combinations(rules, 2):
        if first.priority != second.priority:
            continue
        if (first.kind, first.rate_percent) == (second.kind, second.rate_percent):
            continue
        if not _conditions_overlap(first, second):
            continue
        message = _(
            "Earning rules “%(first)s” (%(first_effect)s) and “%(second)s” (%(second_effect)s) have the same priority "
            "%(priority)s and can apply to the same line at the same time: the one that started last would decide. "
            "Give the one that should win a higher priority."
        ) % {
            "first": first.name,
            "first_effect": earning_effect(first),
            "second": second.name,
            "second_effect": earning_effect(second),
            "priority": first.priority,
        }
        conflicts.append(Conflict(EARNING_CONTRADICTION, WARNING, first, second, message))
    return conflicts


def _redemption_conflicts(rules: list[RedemptionRule]) -> list[Conflict]:
    conflicts = []
    forbidden = RedemptionRule.Kind.FORBIDDEN
    for first, second in combinations(rules, 2):
        if not (_brackets_overlap(first, second) and _conditions_overlap(first, second)):
            continue
        names = {
            "first": first.name,
            "first_effect": redemption_effect(first),
            "second": second.name,
            "second_effect": redemption_effect(second),
        }
        if (first.kind == forbidden) != (second.kind == forbidden):
            message = _(
                "Redemption rules “%(first)s” (%(first_effect)s) and “%(second)s” (%(second_effect)s) can apply to "
                "the same line at the same time: the prohibition always wins there, so the cap never applies."
            )
            conflicts.append(Conflict(PROHIBITION_AND_CAP, WARNING, first, second, message % names))
        elif (
            first.kind != forbidden
            and first.rule_set_id == second.rule_set_id
            and (_has_bracket(first) or _has_bracket(second))
            and (first.kind, first.percent) != (second.kind, second.percent)
        ):
            message = _(
                "Redemption rules “%(first)s” (%(first_effect)s) and “%(second)s” (%(second_effect)s) of the same "
                "rule set have overlapping discount brackets with different caps: the smaller cap wins where they "
                "overlap. Make the brackets adjoin instead."
            )
            conflicts.append(Conflict(BRACKET_CAPS, WARNING, first, second, message % names))
    return conflicts


def _promotion_conflicts(promotions: list[Promotion]) -> list[Conflict]:
    conflicts = []
    for first, second in combinations(promotions, 2):
        if not _conditions_overlap(first, second):
            continue
        largest = max(first, second, key=lambda promotion: promotion.multiplier)
        message = _(
            "Promotions “%(first)s” (%(first_effect)s) and “%(second)s” (%(second_effect)s) can apply to the same "
            "line at the same time: they do not add up, the largest multiplier (%(largest)s) applies."
        ) % {
            "first": first.name,
            "first_effect": promotion_effect(first),
            "second": second.name,
            "second_effect": promotion_effect(second),
            "largest": promotion_effect(largest),
        }
        conflicts.append(Conflict(PROMOTIONS_OVERLAP, INFO, first, second, message))
    return conflicts
