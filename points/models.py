"""The points ledger (SPEC F-LED): accounts, lots, the append-only journal and holds.

Bucket arithmetic (checked by ``points_reconcile`` and the property tests):
  account.available == Σ lot.remaining (active lots) == Σ entry.available_delta
  account.pending   == Σ lot.remaining (pending lots) == Σ entry.pending_delta
  account.held      == Σ lot.held                     == Σ entry.held_delta
  account.debt      == Σ entry.debt_delta
  per entry: Σ allocation.remaining_delta == available_delta + pending_delta,
             Σ allocation.held_delta      == held_delta
"""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from customers.models import Customer
from integrations.models import Channel

POINTS = {"max_digits": 14, "decimal_places": 2}
ZERO = Decimal("0.00")


class LotKind(models.TextChoices):
    PURCHASE = "purchase", _("purchase")
    INTEREST_PAYMENT = "interest_payment", _("interest payment")
    WELCOME = "welcome", _("welcome bonus")
    BIRTHDAY = "birthday", _("birthday bonus")
    REVIEW = "review", _("review reward")
    EMAIL = "email", _("validated email bonus")
    APOLOGY = "apology", _("apology points")
    REFERRAL = "referral", _("referral reward")
    PROMO = "promo", _("promotion")
    MANUAL = "manual", _("manual adjustment")
    MIGRATION = "migration", _("opening balance")


class BalanceType(models.Model):
    """A kind of points with its own rules, e.g. retail and B2B (F-LED-11)."""

    code = models.SlugField(_("code"), max_length=30, unique=True)
    name = models.CharField(pgettext_lazy("title of a thing", "name"), max_length=100)
    default_lifetime_days = models.PositiveIntegerField(
        _("default lifetime, days"),
        null=True,
        blank=True,
        default=365,
        help_text=_("How long accrued points live unless the lot kind says otherwise. Empty: forever."),
    )

    class Meta:
        verbose_name = _("balance type")
        verbose_name_plural = _("balance types")

    def __str__(self) -> str:
        return self.name


class LotLifetime(models.Model):
    balance_type = models.ForeignKey(BalanceType, on_delete=models.CASCADE, related_name="lifetimes")
    kind = models.CharField(_("lot kind"), max_length=20, choices=LotKind.choices)
    lifetime_days = models.PositiveIntegerField(
        _("lifetime, days"), null=True, blank=True, help_text=_("Empty: never expires.")
    )

    class Meta:
        verbose_name = _("lot lifetime")
        verbose_name_plural = _("lot lifetimes")
        constraints = [models.UniqueConstraint(fields=["balance_type", "kind"], name="lot_lifetime_unique_kind")]

    def __str__(self) -> str:
        return f"{self.balance_type}: {self.kind}"


class Account(models.Model):
    """One customer's points of one balance type, with cached bucket totals (kept in step by services)."""

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="point_accounts", verbose_name=_("customer")
    )
    balance_type = models.ForeignKey(
        BalanceType, on_delete=models.PROTECT, related_name="+", verbose_name=_("balance type")
    )
    available = models.DecimalField(_("available"), default=ZERO, **POINTS)
    pending = models.DecimalField(_("pending"), default=ZERO, **POINTS)
    held = models.DecimalField(_("held"), default=ZERO, **POINTS)
    debt = models.DecimalField(_("debt"), default=ZERO, **POINTS)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("points account")
        verbose_name_plural = _("points accounts")
        constraints = [
            models.UniqueConstraint(fields=["customer", "balance_type"], name="account_unique_per_balance_type"),
            models.CheckConstraint(condition=Q(available__gte=0), name="account_available_non_negative"),
            models.CheckConstraint(condition=Q(pending__gte=0), name="account_pending_non_negative"),
            models.CheckConstraint(condition=Q(held__gte=0), name="account_held_non_negative"),
            models.CheckConstraint(condition=Q(debt__gte=0), name="account_debt_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}/{self.balance_type_id}"


class Lot(models.Model):
    """Points from one accrual. ``remaining`` is unspent and unheld; ``held`` is reserved by open holds."""

    class State(models.TextChoices):
        PENDING = "pending", _("pending")
        ACTIVE = "active", _("active")
        SPENT = "spent", _("spent")
        EXPIRED = "expired", _("expired")
        CANCELLED = "cancelled", _("cancelled")
        MOVED = "moved", _("moved by a merge")

    class Restriction(models.TextChoices):
        NONE = "", _("none")
        FIRST_ORDER = "first_order", _("first order only")
        MEMBERS_ONLY = "members_only", _("members only")

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="lots", verbose_name=_("account"))
    kind = models.CharField(_("kind"), max_length=20, choices=LotKind.choices)
    amount = models.DecimalField(_("amount"), **POINTS)
    remaining = models.DecimalField(_("remaining"), **POINTS)
    held = models.DecimalField(_("held"), default=ZERO, **POINTS)
    state = models.CharField(_("state"), max_length=10, choices=State.choices)
    available_from = models.DateTimeField(
        _("available from"),
        null=True,
        blank=True,
        help_text=_("A pending lot unlocks at this time; empty: when its event happens (e.g. delivery)."),
    )
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    lifetime_days = models.PositiveIntegerField(
        _("lifetime, days"), null=True, blank=True, help_text=_("Applied when a pending lot unlocks.")
    )
    restriction = models.CharField(_("spend restriction"), max_length=20, choices=Restriction.choices, blank=True)
    moved_to = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,  # the partial index lot_moved_to serves it
        verbose_name=_("moved to"),
        help_text=_("The copy of this lot on the customer it was merged into."),
    )
    source_type = models.CharField(_("source type"), max_length=30, blank=True)
    source_id = models.CharField(_("source id"), max_length=100, blank=True)
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        verbose_name = _("lot")
        verbose_name_plural = _("lots")
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="lot_amount_positive"),
            models.CheckConstraint(condition=Q(remaining__gte=0), name="lot_remaining_non_negative"),
            models.CheckConstraint(condition=Q(held__gte=0), name="lot_held_non_negative"),
            models.CheckConstraint(condition=Q(remaining__lte=F("amount") - F("held")), name="lot_within_amount"),
            models.CheckConstraint(
                condition=Q(state__in=["pending", "active", "spent", "expired", "cancelled", "moved"]),
                name="lot_state_valid",
            ),
            # Only pending and active lots have points left; a pending lot cannot be held.
            models.CheckConstraint(
                condition=Q(state__in=["pending", "active"]) | Q(remaining=0), name="lot_closed_has_no_remaining"
            ),
            models.CheckConstraint(
                condition=~Q(state__in=["pending", "cancelled", "moved"]) | Q(held=0), name="lot_pending_not_held"
            ),
            models.CheckConstraint(
                condition=Q(state="moved", moved_to__isnull=False) | (~Q(state="moved") & Q(moved_to__isnull=True)),
                name="lot_moved_has_copy",
            ),
        ]
        indexes = [
            # Redemption: an account's active lots, soonest-expiring first.
            models.Index(fields=["account", "expires_at"], condition=Q(state="active"), name="lot_active_by_expiry"),
            # The expiry job: due active lots across all accounts.
            models.Index(fields=["expires_at"], condition=Q(state="active"), name="lot_active_expiry_due"),
            models.Index(fields=["available_from"], condition=Q(state="pending"), name="lot_pending_by_date"),
            models.Index(fields=["source_type", "source_id"], name="lot_source"),
            models.Index(fields=["moved_to"], condition=Q(moved_to__isnull=False), name="lot_moved_to"),
            # The admin list filtered by state or kind, newest first (F-STAFF-4).
            models.Index(fields=["state", "-id"], name="lot_by_state"),
            models.Index(fields=["kind", "-id"], name="lot_by_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} ({self.state})"


class Hold(models.Model):
    """Points reserved at checkout (F-LED-10): committed on payment, released on failure or timeout."""

    class State(models.TextChoices):
        OPEN = "open", _("open")
        COMMITTED = "committed", _("committed")
        RELEASED = "released", _("released")

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="holds", verbose_name=_("account"))
    amount = models.DecimalField(_("amount"), **POINTS)
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.OPEN)
    operation_key = models.CharField(_("operation key"), max_length=200, unique=True)
    expires_at = models.DateTimeField(_("expires at"))
    created_at = models.DateTimeField(_("created at"))
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("hold")
        verbose_name_plural = _("holds")
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="hold_amount_positive"),
            models.CheckConstraint(condition=Q(state="open") | Q(closed_at__isnull=False), name="hold_closed_at"),
        ]
        indexes = [models.Index(fields=["expires_at"], condition=Q(state="open"), name="hold_open_by_expiry")]

    def __str__(self) -> str:
        return f"hold {self.amount} ({self.state})"


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("the points journal is append-only")

    def delete(self):
        raise TypeError("the points journal is append-only")


class AppendOnly(models.Model):
    """Journal rows are written once: updates and deletes refuse here, and on PostgreSQL in a trigger."""

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None and not kwargs.get("force_insert"):
            raise TypeError("the points journal is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("the points journal is append-only")


class Entry(AppendOnly):
    """One line of the append-only journal. Several lines may share an operation key (``operation_seq``)."""

    class Kind(models.TextChoices):
        ACCRUE = "accrue", _("accrual")
        UNLOCK = "unlock", _("unlock")
        HOLD = "hold", _("hold")
        RELEASE = "release", _("hold release")
        REDEEM = "redeem", _("redemption")
        REFUND = "refund", _("refund")
        EXPIRE = "expire", _("expiry")
        CANCEL = "cancel", _("cancellation")
        CLAWBACK = "clawback", _("clawback")
        SETTLE = "settle", _("debt settlement")
        ADJUST = "adjust", _("manual adjustment")
        RESET = "reset", _("balance reset")
        UNRESTRICT = "unrestrict", _("restriction lifted")
        MOVE_OUT = "move_out", _("moved to another customer")
        MOVE_IN = "move_in", _("moved from another customer")
        SPLIT = "split", _("split of pending points")

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="entries", verbose_name=_("account"))
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    amount = models.DecimalField(_("amount"), help_text=_("Points the operation moved (positive)."), **POINTS)
    available_delta = models.DecimalField(_("available change"), default=ZERO, **POINTS)
    pending_delta = models.DecimalField(_("pending change"), default=ZERO, **POINTS)
    held_delta = models.DecimalField(_("held change"), default=ZERO, **POINTS)
    debt_delta = models.DecimalField(_("debt change"), default=ZERO, **POINTS)
    operation_key = models.CharField(_("operation key"), max_length=200)
    operation_seq = models.PositiveSmallIntegerField(_("line of operation"), default=0)
    fingerprint = models.CharField(max_length=64, blank=True, editable=False)
    actor_channel = models.ForeignKey(
        Channel,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("channel"),
        db_index=False,
    )
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        db_index=False,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("staff user"),
    )
    reason = models.TextField(_("reason"), blank=True)
    hold = models.ForeignKey(
        Hold, on_delete=models.PROTECT, null=True, blank=True, related_name="entries", db_index=False
    )
    reverses = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reversals",
        verbose_name=_("reverses"),
        db_index=False,
    )
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        verbose_name = _("journal entry")
        verbose_name_plural = _("journal entries")
        constraints = [
            models.UniqueConstraint(fields=["operation_key", "operation_seq"], name="entry_operation_key_unique"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="entry_amount_non_negative"),
        ]
        indexes = [
            models.Index(fields=["account", "-created_at", "-id"], name="entry_account_history"),
            # These references are empty on most lines (a job's expiry has none): partial indexes halve the
            # index writes per journal line and still serve the PROTECT checks and lookups.
            models.Index(fields=["actor_channel"], condition=Q(actor_channel__isnull=False), name="entry_by_channel"),
            models.Index(fields=["actor_user"], condition=Q(actor_user__isnull=False), name="entry_by_user"),
            models.Index(fields=["hold"], condition=Q(hold__isnull=False), name="entry_by_hold"),
            models.Index(fields=["reverses"], condition=Q(reverses__isnull=False), name="entry_by_reversed"),
            # The admin list filtered by kind, newest first (F-STAFF-4).
            models.Index(fields=["kind", "-id"], name="entry_by_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} [{self.operation_key}]"


class Allocation(AppendOnly):
    """How one journal entry changed one lot."""

    entry = models.ForeignKey(Entry, on_delete=models.PROTECT, related_name="allocations")
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="allocations")
    remaining_delta = models.DecimalField(_("remaining change"), default=ZERO, **POINTS)
    held_delta = models.DecimalField(_("held change"), default=ZERO, **POINTS)

    class Meta:
        verbose_name = _("allocation")
        verbose_name_plural = _("allocations")

    def __str__(self) -> str:
        return f"{self.entry_id}→{self.lot_id} {self.remaining_delta}/{self.held_delta}"


class BalanceReset(models.Model):
    """A scheduled mass zeroing of balances (F-LED-9): previewed, announced, then run once."""

    class State(models.TextChoices):
        SCHEDULED = "scheduled", _("scheduled")
        DONE = "done", _("done")
        CANCELLED = "cancelled", _("cancelled")

    balance_type = models.ForeignKey(
        BalanceType, on_delete=models.PROTECT, related_name="+", verbose_name=_("balance type")
    )
    memberships = models.JSONField(
        _("memberships"),
        default=list,
        blank=True,
        help_text=_("Reset only customers in these membership states; empty: everyone."),
    )
    run_at = models.DateTimeField(_("run at"))
    reason = models.TextField(_("reason"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("created by")
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.SCHEDULED)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    accounts_reset = models.PositiveIntegerField(_("accounts reset"), default=0)
    points_reset = models.DecimalField(_("points reset"), default=ZERO, **POINTS)

    class Meta:
        verbose_name = _("balance reset")
        verbose_name_plural = _("balance resets")

    def __str__(self) -> str:
        return f"{self.balance_type} @ {self.run_at:%Y-%m-%d}"
