"""Writes of programme rules: earning rules, redemption rules and promotions (SPEC F-EARN-1 … 3, F-RED-1 … 3), and
switching rule sets on and off.

History stays reproducible (a cart can be recalculated as of any past moment, ``programmes.calculator``), so:

- a rule starts now or later, never in the past (``valid_from >= at``);
- a rule not yet in force (``valid_from > at``) may change freely, or be deleted;
- a rule that has taken effect (``valid_from <= at``) keeps its conditions and effect for good. It may only be
  ended (``valid_until`` moved, not before ``at``, while it has not ended yet) or replaced from ``at`` by a copy
  carrying the changes (``rule_replace``); its name and note, which no calculation reads for its numbers, stay
  editable. It is never deleted.

``at`` is the moment of the change, now by default: the caller's clock (the admin passes the moment its form was
checked, so a start of "now" typed in the form is not "in the past" a few milliseconds later).

Every write locks the rule's row (``select_for_update``) and re-reads it before checking, so two managers editing
the same rule are serialised and the check sees what is stored. Each save renews the programme's
``rules_version`` (``programmes.models.rules_changed``), which retires cached rulebooks.

``rule_check`` / ``rule_replace_check`` run the same checks without writing, so a form can show the errors on its
fields before saving.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.actors import Actor
from programmes.exceptions import ProgrammeError, RuleChangeRefused, RuleInvalid, RuleNotReplaceable
from programmes.models import EarningRule, Promotion, RedemptionRule, RuleSet, Tier
from staff.models import AuditRecord
from staff.services import audit_record

Rule = EarningRule | RedemptionRule | Promotion
RULE_MODELS: tuple[type[Rule], ...] = (EarningRule, RedemptionRule, Promotion)
CONDITION_M2M = ("tiers", "stores", "categories")
# Read by no calculation's numbers (the name only labels explanations): editable at any time.
DESCRIPTIVE_FIELDS = frozenset({"name", "note"})
_NOT_DATA = frozenset({"id", "created_at", "updated_at"})


# --- what a rule holds -----------------------------------------------------------------------------------------


def rule_field_names(model: type[Rule]) -> list[str]:
    """The fields a manager sets: the concrete ones (a foreign key by its name) and the many-to-many conditions."""
    concrete = [field.name for field in model._meta.concrete_fields if field.name not in _NOT_DATA]
    return [*concrete, *CONDITION_M2M]


def rule_is_effective(rule: Rule, at: datetime) -> bool:
    """It has taken effect (in force or ended): its conditions and effect are part of the history."""
    return rule.valid_from <= at


def rule_is_ended(rule: Rule, at: datetime) -> bool:
    return rule.valid_until is not None and rule.valid_until <= at


def rule_is_in_force(rule: Rule, at: datetime) -> bool:
    """By its dates; whether its rule set (or the promotion) is active is another matter."""
    return rule_is_effective(rule, at) and not rule_is_ended(rule, at)


def rule_programme_id(rule: Rule) -> int:
    if isinstance(rule, Promotion):
        return rule.programme_id
    return RuleSet.objects.values_list("programme_id", flat=True).get(pk=rule.rule_set_id)


@dataclass(frozen=True)
class _State:
    """A rule's data, comparable: scalar fields by name (a foreign key as its id), conditions as id sets."""

    values: dict[str, Any]
    m2m: dict[str, frozenset[int]]

    def changed(self, other: _State) -> set[str]:
        names = {name for name, value in self.values.items() if other.values[name] != value}
        return names | {name for name, ids in self.m2m.items() if other.m2m[name] != ids}


def _ids(items: Iterable[Any]) -> frozenset[int]:
    return frozenset(item.pk if isinstance(item, models.Model) else int(item) for item in items or ())


def _state(rule: Rule, *, m2m: dict[str, frozenset[int]] | None = None) -> _State:
    values = {
        field.name: field.value_from_object(rule)
        for field in type(rule)._meta.concrete_fields
        if field.name not in _NOT_DATA
    }
    if m2m is None:
        m2m = (
            {name: frozenset(getattr(rule, name).values_list("pk", flat=True)) for name in CONDITION_M2M}
            if rule.pk is not None
            else dict.fromkeys(CONDITION_M2M, frozenset())
        )
    return _State(values, dict(m2m))


def _split(model: type[Rule], changes: dict[str, Any]) -> tuple[dict[str, Any], dict[str, frozenset[int]]]:
    """(scalar changes, condition changes as id sets); an unknown name is a programming error."""
    unknown = set(changes) - set(rule_field_names(model))
    if unknown:
        raise ValueError(f"not fields of {model.__name__}: {', '.join(sorted(unknown))}")
    scalars = {name: value for name, value in changes.items() if name not in CONDITION_M2M}
    m2m = {name: _ids(value) for name, value in changes.items() if name in CONDITION_M2M}
    return scalars, m2m


def _apply(rule: Rule, scalars: dict[str, Any]) -> None:
    for name, value in scalars.items():
        field = type(rule)._meta.get_field(name)
        if field.is_relation and not isinstance(value, models.Model):
            setattr(rule, field.attname, value)
        else:
            setattr(rule, name, value)


# --- checks ------------------------------------------------------------------------------------------------------


class _Errors:
    def __init__(self) -> None:
        self.fields: dict[str, list[dict[str, str]]] = {}

    def add(self, name: str, code: str, message: str) -> None:
        self.fields.setdefault(name, []).append({"code": code, "message": str(message)})

    def __bool__(self) -> bool:
        return bool(self.fields)


def _history_errors(before: _State | None, after: _State, at: datetime, errors: _Errors) -> None:
    """What a rule may become, given what it was (None: a new rule) and the moment of the change."""
    effective = before is not None and before.values["valid_from"] <= at
    if not effective:
        if after.values["valid_from"] is not None and after.values["valid_from"] < at:
            errors.add(
                "valid_from",
                "start_in_past",
                _("A rule cannot start in the past: calculations already made could no longer be reproduced."),
            )
        return
    for name in sorted(before.changed(after) - DESCRIPTIVE_FIELDS - {"valid_until"}):
        errors.add(
            name,
            "rule_in_force",
            _("The rule has taken effect: this can no longer change. End the rule, or replace it from now."),
        )
    if before.values["valid_until"] != after.values["valid_until"]:
        ended = before.values["valid_until"] is not None and before.values["valid_until"] <= at
        if ended:
            errors.add("valid_until", "rule_ended", _("The rule has ended: its end can no longer change."))
        elif after.values["valid_until"] is not None and after.values["valid_until"] < at:
            errors.add("valid_until", "end_in_past", _("A rule in force cannot end in the past: end it now or later."))


def _tier_errors(model: type[Rule], after: _State, errors: _Errors) -> None:
    """The tiers a rule names must be its programme's."""
    if not after.m2m["tiers"]:
        return
    if model is Promotion:
        programme_id = after.values["programme"]
    else:
        programme_id = (
            RuleSet.objects.filter(pk=after.values["rule_set"]).values_list("programme_id", flat=True).first()
        )
    if programme_id is None:
        return  # no programme or rule set chosen: the model's validation says so
    foreign = Tier.objects.filter(pk__in=after.m2m["tiers"]).exclude(programme_id=programme_id)
    if foreign.exists():
        errors.add("tiers", "other_programme", _("Choose tiers of the rule's own programme."))


def _effect_errors(rule: Rule, errors: _Errors) -> None:
    """A rate rule needs its rate, a share cap its percentage: the models' check constraints let a NULL through
    (a CHECK passes on NULL), and the calculator cannot work with a rate or a share of nothing."""
    if isinstance(rule, EarningRule) and rule.kind == EarningRule.Kind.RATE and rule.rate_percent is None:
        errors.add("rate_percent", "required", _("A rate rule needs its percentage."))
    shares = (RedemptionRule.Kind.PRICE_SHARE, RedemptionRule.Kind.BALANCE_SHARE)
    if isinstance(rule, RedemptionRule) and rule.kind in shares and rule.percent is None:
        errors.add("percent", "required", _("A share cap needs its percentage."))


def _model_errors(rule: Rule, errors: _Errors) -> None:
    _effect_errors(rule, errors)
    try:
        rule.full_clean()
    except ValidationError as error:
        for name, messages in error.message_dict.items():
            for message in messages:
                errors.add(name, "invalid", message)


def _check(model: type[Rule], before: _State | None, after: _State, at: datetime) -> _Errors:
    errors = _Errors()
    _history_errors(before, after, at, errors)
    _tier_errors(model, after, errors)
    return errors


def _raise(errors: _Errors, error_class: type[ProgrammeError]) -> None:
    if errors:
        refused = {"start_in_past", "rule_in_force", "rule_ended", "end_in_past"}
        codes = {item["code"] for items in errors.fields.values() for item in items}
        raise (RuleChangeRefused if codes & refused else error_class)(fields=errors.fields)


def rule_check(*, rule: Rule | None, model: type[Rule], changes: dict[str, Any], at: datetime | None = None) -> None:
    """Would ``rule_create`` (``rule`` None) or ``rule_update`` accept ``changes`` at ``at``, as far as the history
    and the tiers go, and whether the effect has its percentage? Raises ``RuleChangeRefused`` / ``RuleInvalid`` with
    field errors; the rest of the model's validation (``full_clean``) is left to the caller's form. Reads, writes
    nothing, takes no lock."""
    at = at or timezone.now()
    scalars, m2m = _split(model, changes)
    before = _state(rule) if rule is not None and rule.pk is not None else None
    start = before or _state(model())
    after = _State({**start.values, **_scalar_ids(model, scalars)}, {**start.m2m, **m2m})
    if before is None and after.values.get("valid_from") is None:
        after.values["valid_from"] = at
    errors = _check(model, before, after, at)
    _effect_errors(_probe(rule if before is not None else model(), scalars), errors)
    _raise(errors, RuleInvalid)


def rule_replace_check(*, rule: Rule, changes: dict[str, Any], at: datetime | None = None) -> None:
    """Would ``rule_replace`` accept ``changes`` at ``at``? As ``rule_check``."""
    at = at or timezone.now()
    if not rule_is_in_force(rule, at):
        raise RuleNotReplaceable()
    scalars, m2m = _split(type(rule), changes)
    current = _state(rule)
    after = _State(
        {**current.values, **_scalar_ids(type(rule), scalars), "valid_from": at},
        {**current.m2m, **m2m},
    )
    errors = _replacement_errors(after, at)
    _tier_errors(type(rule), after, errors)
    _effect_errors(_probe(rule, scalars), errors)
    _raise(errors, RuleInvalid)


def _probe(rule: Rule, scalars: dict[str, Any]) -> Rule:
    """An unsaved copy of ``rule`` with the changes, for checks that read the instance."""
    probe = copy.copy(rule)
    _apply(probe, scalars)
    return probe


def _replacement_errors(after: _State, at: datetime) -> _Errors:
    errors = _Errors()
    if after.values["valid_until"] is not None and after.values["valid_until"] <= at:
        errors.add("valid_until", "end_in_past", _("The replacement must end after now."))
    return errors


def _scalar_ids(model: type[Rule], scalars: dict[str, Any]) -> dict[str, Any]:
    """Scalar changes as ``_State`` holds them (a related object as its id)."""
    return {name: value.pk if isinstance(value, models.Model) else value for name, value in scalars.items()}


# --- writes ------------------------------------------------------------------------------------------------------


def _lock(rule: Rule) -> Rule:
    return type(rule).objects.select_for_update().get(pk=rule.pk)


def _save(rule: Rule, m2m: dict[str, frozenset[int]]) -> None:
    rule.save()
    for name, ids in m2m.items():
        getattr(rule, name).set(ids)


def _audit(actor: Actor, target: Rule | RuleSet, before: _State | None, after: _State | None, at: datetime) -> None:
    """A staff user's rule change in the audit trail (F-STAFF-3): the fields that differ, before and after (a
    created rule has no before, a deleted one no after)."""

    def flat(state: _State | None) -> dict[str, Any]:
        if state is None:
            return {}
        return {**state.values, **{name: sorted(ids) for name, ids in state.m2m.items()}}

    old, new = flat(before), flat(after)
    changed = [name for name in {**old, **new} if old.get(name) != new.get(name)]
    audit_record(
        actor=actor,
        action=AuditRecord.Action.RULE_CHANGE,
        target=target,
        before={name: old[name] for name in changed if name in old},
        after={name: new[name] for name in changed if name in new},
        now=at,
    )


def rule_create(*, model: type[Rule], values: dict[str, Any], actor: Actor, at: datetime | None = None) -> Rule:
    """Create an earning rule, redemption rule or promotion from ``values`` (field names; a related object or its
    id; the conditions ``tiers``, ``stores``, ``categories`` as objects or ids). No ``valid_from``: from ``at``.
    Refused (nothing written): a start before ``at`` (``rule_change_refused``), tiers of another programme or
    what the model's validation refuses (``rule_invalid``)."""
    at = at or timezone.now()
    scalars, m2m = _split(model, values)
    if scalars.get("valid_from") is None:
        scalars["valid_from"] = at
    rule = model()
    _apply(rule, scalars)
    after = _state(rule, m2m={**dict.fromkeys(CONDITION_M2M, frozenset()), **m2m})
    errors = _check(model, None, after, at)
    _model_errors(rule, errors)
    _raise(errors, RuleInvalid)
    with transaction.atomic():
        _save(rule, m2m)
        _audit(actor, rule, None, after, at)
    return rule


def rule_update(*, rule: Rule, changes: dict[str, Any], actor: Actor, at: datetime | None = None) -> Rule:
    """Change a rule: anything while it is not yet in force; once it has taken effect only its name, note and end
    (not before ``at``, and only while it has not ended). Under the lock of the rule's row, checked against what is
    stored; refused (``rule_change_refused`` / ``rule_invalid``, nothing written) otherwise. Changing nothing writes
    nothing. Returns the stored rule."""
    at = at or timezone.now()
    scalars, m2m = _split(type(rule), changes)
    with transaction.atomic():
        current = _lock(rule)
        before = _state(current)
        _apply(current, scalars)
        after = _State(_state(current, m2m=before.m2m).values, {**before.m2m, **m2m})
        if not before.changed(after):
            return current  # nothing to write: the rules version (the calculator's cache) stays
        errors = _check(type(rule), before, after, at)
        _model_errors(current, errors)
        _raise(errors, RuleInvalid)
        _save(current, {name: ids for name, ids in m2m.items() if ids != before.m2m[name]})
        _audit(actor, current, before, after, at)
    return current


def rule_end(*, rule: Rule, actor: Actor, until: datetime | None = None, at: datetime | None = None) -> Rule:
    """End a rule at ``until`` (default ``at``, i.e. now): ``rule_update`` of its end."""
    at = at or timezone.now()
    return rule_update(rule=rule, changes={"valid_until": until or at}, actor=actor, at=at)


def rule_replace(
    *, rule: Rule, actor: Actor, changes: dict[str, Any] | None = None, at: datetime | None = None
) -> Rule:
    """Replace a rule in force from ``at`` (now): in one transaction, under the lock of the old rule's row, end it at
    ``at`` and create its copy — the same rule set (or programme), conditions (many-to-many included) and effect,
    with ``changes`` applied, valid from ``at`` until the old rule's end unless ``changes`` set another. A
    calculation as of a moment before ``at`` still finds the old rule. Returns the new rule.

    Refused, nothing written: a rule not in force at ``at`` (``rule_not_replaceable``: edit one not yet in force),
    a replacement ending by ``at`` or otherwise invalid (``rule_invalid``)."""
    at = at or timezone.now()
    model = type(rule)
    changes = dict(changes or {})
    if "valid_from" in changes:
        raise ValueError("a replacement starts when the old rule ends (at)")
    scalars, m2m = _split(model, changes)
    with transaction.atomic():
        old = _lock(rule)
        if not rule_is_in_force(old, at):
            raise RuleNotReplaceable()
        before = _state(old)
        new = model()
        _apply(new, {name: before.values[name] for name in before.values})
        _apply(new, {**scalars, "valid_from": at})
        if "valid_until" not in scalars:
            new.valid_until = old.valid_until
        conditions = {**before.m2m, **m2m}
        after = _state(new, m2m=conditions)
        errors = _replacement_errors(after, at)
        _tier_errors(model, after, errors)
        _model_errors(new, errors)
        if old.valid_from >= at:
            errors.add(NON_FIELD_ERRORS, "started_now", _("The rule starts at this very moment: edit it instead."))
        _raise(errors, RuleInvalid)
        old.valid_until = at
        old.save(update_fields=["valid_until", "updated_at"])
        _save(new, conditions)
        # One record for the replacement: the old rule's data against the new one's, which names the old rule.
        _audit(actor, new, before, _State({**after.values, "replaces": old.pk}, after.m2m), at)
    return new


def rule_delete(*, rule: Rule, actor: Actor, at: datetime | None = None) -> None:
    """Delete a rule not yet in force. One that has taken effect is kept for the history (``rule_change_refused``):
    end it instead."""
    at = at or timezone.now()
    with transaction.atomic():
        current = _lock(rule)
        if rule_is_effective(current, at):
            raise RuleChangeRefused(
                _("The rule has taken effect and is kept for the history: end it instead of deleting it.")
            )
        _audit(actor, current, _state(current), None, at)
        current.delete()


# --- rule sets ---------------------------------------------------------------------------------------------------


def _rule_set_switch(rule_set: RuleSet, active: bool, actor: Actor) -> bool:
    with transaction.atomic():
        current = RuleSet.objects.select_for_update().get(pk=rule_set.pk)
        if current.is_active == active:
            return False
        current.is_active = active
        current.save(update_fields=["is_active"])
        switched = _State({"is_active": active}, {})
        _audit(actor, current, _State({"is_active": not active}, {}), switched, timezone.now())
    rule_set.is_active = active
    return True


def rule_set_activate(*, rule_set: RuleSet, actor: Actor) -> bool:
    """Switch a rule set on; False if it already was. Its rules then apply within their dates — also in
    calculations "as of" the past: a rule set's switch has no date."""
    return _rule_set_switch(rule_set, True, actor)


def rule_set_deactivate(*, rule_set: RuleSet, actor: Actor) -> bool:
    """Switch a rule set off; False if it already was. None of its rules applies any more, whatever their dates —
    also in calculations "as of" the past; to stop rules from now on and keep the history, end them instead."""
    return _rule_set_switch(rule_set, False, actor)


def rule_set_delete(*, rule_set: RuleSet, actor: Actor, at: datetime | None = None) -> None:
    """Delete a rule set and its rules, if none of them has taken effect (``rule_change_refused`` otherwise)."""
    at = at or timezone.now()
    with transaction.atomic():
        current = RuleSet.objects.select_for_update().get(pk=rule_set.pk)
        if (
            current.earning_rules.filter(valid_from__lte=at).exists()
            or current.redemption_rules.filter(valid_from__lte=at).exists()
        ):
            raise RuleChangeRefused(
                _("Some of its rules have taken effect and are kept for the history: deactivate the set instead.")
            )
        _audit(actor, current, _State({"name": current.name, "is_active": current.is_active}, {}), None, at)
        current.delete()
