"""What a customer merge (F-ID-7) means for tiers: the duplicate's purchases count for the survivor."""

from __future__ import annotations

from django.db.models import ProtectedError
from django.db.models.signals import m2m_changed, post_delete, pre_delete
from django.dispatch import receiver
from django.utils.translation import gettext as _

from catalog.models import Category
from customers.models import Customer
from customers.services import customer_merged
from integrations.models import Store
from programmes.models import (
    CustomerTier,
    EarningRule,
    Programme,
    Promotion,
    PurchaseRecord,
    RedemptionRule,
    RuleSet,
    Tier,
    rules_changed,
)
from programmes.selectors import rules_naming
from programmes.services import tier_upgrade_if_qualified


@receiver(customer_merged, dispatch_uid="programmes.merge")
def purchases_follow_a_merge(sender, *, duplicate: Customer, survivor: Customer, **kwargs) -> None:
    """Inside the merge's transaction: the duplicate's purchase records move to the survivor, its tier row goes
    (its history stays with it), and the survivor is upgraded if the purchases together qualify — never
    downgraded here (that is the recalculation's job)."""
    programme_ids = set(PurchaseRecord.objects.filter(customer=duplicate).values_list("programme", flat=True))
    PurchaseRecord.objects.filter(customer=duplicate).update(customer=survivor)
    CustomerTier.objects.filter(customer=duplicate).delete()
    for programme in Programme.objects.filter(pk__in=programme_ids):
        tier_upgrade_if_qualified(customer=survivor, programme=programme)


def _conditions_changed(sender, *, instance, action: str, reverse: bool, model, pk_set, **kwargs) -> None:
    """A rule's tiers, stores or categories changed outside its own save (e.g. in code): a new rules version."""
    if not action.startswith("post_"):
        return
    rules = [instance] if not reverse else list(model.objects.filter(pk__in=pk_set or ()))
    for programme_id in {rule.programme_id_for_cache for rule in rules}:
        rules_changed(programme_id)


for _model in (EarningRule, RedemptionRule, Promotion):
    for _field in ("tiers", "stores", "categories"):
        m2m_changed.connect(
            _conditions_changed,
            sender=getattr(_model, _field).through,
            dispatch_uid=f"programmes.rules_changed.{_model.__name__}.{_field}",
        )


def _deleted(sender, *, instance, **kwargs) -> None:
    """Deletes (one by one, by a queryset or by a cascade) renew the rules version like saves do."""
    try:
        programme_id = getattr(instance, "programme_id", None) or instance.programme_id_for_cache
    except RuleSet.DoesNotExist:
        return  # its rule set goes in the same delete and renews the version itself
    rules_changed(programme_id)


for _model in (Tier, RuleSet, EarningRule, RedemptionRule, Promotion):
    post_delete.connect(_deleted, sender=_model, dispatch_uid=f"programmes.rules_changed.deleted.{_model.__name__}")


def _named_by_rules(sender, *, instance, **kwargs) -> None:
    """A tier, store or category a rule names cannot go: the rule would silently lose the condition and apply to
    everything. End or change the rules first."""
    rules = rules_naming(instance)
    if rules:
        raise ProtectedError(
            _("%(object)s is named by rules: %(rules)s.") % {"object": instance, "rules": ", ".join(map(str, rules))},
            set(rules),
        )


for _model in (Tier, Store, Category):
    pre_delete.connect(_named_by_rules, sender=_model, dispatch_uid=f"programmes.named_by_rules.{_model.__name__}")
