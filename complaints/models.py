"""The complaints desk (issue 7, SPEC F-STAFF-1): complaint cases, apology points granted on them and the budgets
that decide whether a grant is issued at once or waits for a CRM manager's approval.

Apology points replace discounts: a grant never writes the ledger itself; ``complaints.services`` accrues its
points through ``points.services.points_accrue`` as a lot of kind ``apology``.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from customers.models import Customer
from points.models import POINTS, Entry


class ComplaintCase(models.Model):
    class Category(models.TextChoices):
        DELIVERY = "delivery", _("delivery")
        QUALITY = "quality", _("product quality")
        SERVICE = "service", _("service")
        STAFF = "staff", _("staff behaviour")
        OTHER = "other", _("other")

    class Status(models.TextChoices):
        OPEN = "open", _("open")
        IN_PROGRESS = "in_progress", _("in progress")
        RESOLVED = "resolved", _("resolved")
        REJECTED = "rejected", _("rejected")

    CLOSED = (Status.RESOLVED, Status.REJECTED)

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="complaints", verbose_name=_("customer")
    )
    order = models.ForeignKey(
        "orders.Order",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="complaints",
        verbose_name=_("order"),
        db_index=False,  # the partial index complaint_by_order serves it
    )
    category = models.CharField(_("category"), max_length=20, choices=Category.choices)
    description = models.TextField(_("description"))
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.OPEN)
    resolution = models.TextField(_("resolution"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        verbose_name=_("opened by"),
    )
    created_at = models.DateTimeField(_("opened at"))
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("complaint case")
        verbose_name_plural = _("complaint cases")
        constraints = [
            models.CheckConstraint(
                condition=Q(category__in=["delivery", "quality", "service", "staff", "other"]),
                name="complaint_category_valid",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["open", "in_progress"], closed_at__isnull=True)
                | Q(status__in=["resolved", "rejected"], closed_at__isnull=False),
                name="complaint_closed_at_matches_status",
            ),
        ]
        indexes = [
            # The customer card (newest first) and the admin list filtered by status / date.
            models.Index(fields=["customer", "-created_at"], name="complaint_by_customer"),
            models.Index(fields=["status", "-created_at"], name="complaint_by_status"),
            models.Index(fields=["-created_at"], name="complaint_newest"),
            models.Index(fields=["order"], condition=Q(order__isnull=False), name="complaint_by_order"),
        ]

    def __str__(self) -> str:
        return _("Complaint #%(id)s") % {"id": self.pk}

    @property
    def is_closed(self) -> bool:
        return self.status in self.CLOSED


class ApologyGrant(models.Model):
    """Apology points granted on a case. Issued at once within the operator's budget; otherwise awaiting a CRM
    manager's approval, which issues it (decided_by set) or rejects it. ``entry`` is the ledger line that
    accrued the points: set exactly when the grant is issued."""

    class State(models.TextChoices):
        ISSUED = "issued", _("issued")
        AWAITING = "awaiting_approval", _("awaiting approval")
        REJECTED = "rejected", _("rejected")

    case = models.ForeignKey(
        ComplaintCase, on_delete=models.PROTECT, related_name="grants", verbose_name=_("complaint case")
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="apology_grants", verbose_name=_("customer"), db_index=False
    )
    amount = models.DecimalField(_("points"), **POINTS)
    reason = models.TextField(_("reason"))
    state = models.CharField(_("state"), max_length=20, choices=State.choices)
    operation_key = models.CharField(
        _("operation key"), max_length=200, unique=True, help_text=_("A repeated request with this key grants once.")
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,  # the index apology_by_operator_day serves it
        verbose_name=_("requested by"),
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        verbose_name=_("decided by"),
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decision_note = models.TextField(_("decision note"), blank=True)
    entry = models.ForeignKey(
        Entry,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        verbose_name=_("journal entry"),
    )
    created_at = models.DateTimeField(_("requested at"))

    class Meta:
        verbose_name = _("apology grant")
        verbose_name_plural = _("apology grants")
        permissions = [
            ("issue_apology", "Can issue apology points"),
            ("approve_apology", "Can approve apology points above the budget"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="apology_amount_positive"),
            models.CheckConstraint(condition=~Q(reason=""), name="apology_reason_given"),
            # Issued: points booked; within the budget nobody decided, above it a manager approved.
            # Awaiting: nothing booked, nobody decided. Rejected: nothing booked, somebody decided.
            models.CheckConstraint(
                condition=(
                    Q(state="issued", entry__isnull=False, decided_by__isnull=True, decided_at__isnull=True)
                    | Q(state="issued", entry__isnull=False, decided_by__isnull=False, decided_at__isnull=False)
                    | Q(state="awaiting_approval", entry__isnull=True, decided_by__isnull=True, decided_at__isnull=True)
                    | Q(state="rejected", entry__isnull=True, decided_by__isnull=False, decided_at__isnull=False)
                ),
                name="apology_decision_matches_state",
            ),
        ]
        indexes = [
            # The operator's daily budget: their grants of today.
            models.Index(fields=["requested_by", "created_at"], name="apology_by_operator_day"),
            models.Index(fields=["customer", "-created_at"], name="apology_by_customer"),
            # The approval queue, oldest first.
            models.Index(fields=["created_at"], condition=Q(state="awaiting_approval"), name="apology_queue"),
            models.Index(fields=["-created_at"], name="apology_newest"),
        ]

    def __str__(self) -> str:
        return _("Apology #%(id)s: %(amount)s points") % {"id": self.pk, "amount": self.amount}


class ApologyBudget(models.Model):
    """How many apology points an operator may grant without approval: per operator per day and per case. Set for
    a user or for a group (exactly one). A user's own budget wins over their groups'; of several groups the most
    generous budget applies; without any budget every grant waits for approval."""

    group = models.OneToOneField(
        Group,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="apology_budget",
        verbose_name=_("group"),
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="apology_budget",
        verbose_name=_("user"),
    )
    daily_limit = models.DecimalField(
        _("daily limit"), help_text=_("Points one operator may grant per day without approval."), **POINTS
    )
    case_limit = models.DecimalField(
        _("case limit"), help_text=_("Points one case may get in total without approval."), **POINTS
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("apology budget")
        verbose_name_plural = _("apology budgets")
        constraints = [
            models.CheckConstraint(
                condition=Q(group__isnull=False, user__isnull=True) | Q(group__isnull=True, user__isnull=False),
                name="apology_budget_group_xor_user",
                violation_error_message=_("Set the budget for exactly one: a group or a user."),
            ),
            models.CheckConstraint(
                condition=Q(daily_limit__gte=0),
                name="apology_budget_daily_non_negative",
                violation_error_message=_("The daily limit must be zero or more."),
            ),
            models.CheckConstraint(
                condition=Q(case_limit__gte=0),
                name="apology_budget_case_non_negative",
                violation_error_message=_("The case limit must be zero or more."),
            ),
        ]

    def __str__(self) -> str:
        holder = self.user if self.user_id is not None else self.group
        return _("Apology budget of %(holder)s") % {"holder": holder}
