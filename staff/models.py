"""Who works where (store membership of staff users) and what they did by hand (the audit trail, F-STAFF-3)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from integrations.models import Store


class StoreMembership(models.Model):
    """A staff user works in a store: showroom staff see that store's customers and orders only (F-STAFF-1)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="store_memberships", verbose_name=_("user")
    )
    store = models.ForeignKey(
        Store, on_delete=models.CASCADE, related_name="staff_memberships", verbose_name=_("store")
    )

    class Meta:
        verbose_name = _("store membership")
        verbose_name_plural = _("store memberships")
        constraints = [models.UniqueConstraint(fields=["user", "store"], name="store_membership_unique")]
        # Held by roles that are not confined to their stores (see ``staff.services.stores``).
        permissions = [
            ("view_all_stores", "Can see every store's customers and orders"),
            ("use_till", "Can use the showroom till screen"),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.store}"


class AuditQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("the audit trail is append-only")

    def delete(self):
        raise TypeError("the audit trail is append-only")


class AuditRecord(models.Model):
    """One manual action: who, when, why, on what, and the state before and after. Written once by
    ``staff.services.audit_record``; updates and deletes refuse here and, on PostgreSQL, in a trigger."""

    class Action(models.TextChoices):
        POINTS_ADJUST = "points_adjust", _("points adjustment")
        APOLOGY_GRANT = "apology_grant", _("apology points granted")
        APOLOGY_REQUEST = "apology_request", _("apology points awaiting approval")
        APOLOGY_APPROVE = "apology_approve", _("apology points approved")
        APOLOGY_REJECT = "apology_reject", _("apology points rejected")
        TIER_CHANGE = "tier_change", _("tier change")
        CUSTOMER_CHANGE = "customer_change", _("customer profile change")
        CUSTOMER_MEMBERSHIP = "customer_membership", _("membership change")
        CUSTOMER_MERGE = "customer_merge", _("customer merge")
        CUSTOMER_ANONYMISE = "customer_anonymise", _("customer anonymisation")
        RULE_CHANGE = "rule_change", _("rule change")
        ORDER_CHANGE = "order_change", _("order change by staff")
        BUDGET_CHANGE = "budget_change", _("apology budget change")

    created_at = models.DateTimeField(_("when"), db_index=True)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("who"),
    )
    action = models.CharField(_("action"), max_length=30, choices=Action.choices)
    # What was acted on: "app_label.model" and its primary key, with a label that outlives a deletion.
    target_type = models.CharField(_("object type"), max_length=100)
    target_id = models.CharField(_("object id"), max_length=64)
    target_label = models.CharField(_("object"), max_length=255, blank=True)
    customer_id = models.BigIntegerField(_("customer id"), null=True, blank=True)
    reason = models.TextField(_("reason"), blank=True)
    before = models.JSONField(_("before"), default=dict, blank=True)
    after = models.JSONField(_("after"), default=dict, blank=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        verbose_name = _("audit record")
        verbose_name_plural = _("audit trail")
        indexes = [
            models.Index(fields=["action", "-created_at"], name="audit_by_action"),
            models.Index(fields=["actor_user", "-created_at"], name="audit_by_actor"),
            models.Index(fields=["customer_id", "-created_at"], name="audit_by_customer"),
            models.Index(fields=["target_type", "target_id"], name="audit_by_target"),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} @ {self.created_at:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None and not kwargs.get("force_insert"):
            raise TypeError("the audit trail is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("the audit trail is append-only")
