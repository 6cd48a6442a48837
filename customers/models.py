from django.db import models
from django.utils.translation import gettext_lazy as _
from phonenumber_field.modelfields import PhoneNumberField


class Customer(models.Model):
    """Who points belong to (SPEC F-ID). Minimal for now; the customers issue completes it."""

    class Membership(models.TextChoices):
        NON_MEMBER = "non_member", _("non-member")
        MEMBER = "member", _("member")
        BLOCKED = "blocked", _("blocked")
        ANONYMISED = "anonymised", _("anonymised")

    phone = PhoneNumberField(_("phone"), unique=True, help_text=_("Stored in E.164, e.g. +79161234567."))
    name = models.CharField(_("name"), max_length=200, blank=True)
    membership = models.CharField(
        _("membership"), max_length=20, choices=Membership.choices, default=Membership.NON_MEMBER
    )
    joined_at = models.DateTimeField(_("joined at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(membership__in=["non_member", "member", "blocked", "anonymised"]),
                name="customer_membership_valid",
            ),
            # A member has a join date; a non-member has none.
            models.CheckConstraint(
                condition=~models.Q(membership="member", joined_at__isnull=True)
                & ~models.Q(membership="non_member", joined_at__isnull=False),
                name="customer_joined_at_matches_membership",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name or _('Customer')} ({self.phone})"

    @property
    def is_member(self) -> bool:
        return self.membership == self.Membership.MEMBER
