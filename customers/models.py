"""Who points belong to (SPEC F-ID): customers, their ids in other systems, consents and history."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from phonenumber_field.modelfields import PhoneNumberField

from integrations.models import Channel, Store


class Customer(models.Model):
    class Membership(models.TextChoices):
        NON_MEMBER = "non_member", _("non-member")
        MEMBER = "member", _("member")
        BLOCKED = "blocked", _("blocked")
        ANONYMISED = "anonymised", _("anonymised")

    class Kind(models.TextChoices):
        RETAIL = "retail", _("retail")
        B2B = "b2b", _("B2B")

    class B2bRole(models.TextChoices):
        NONE = "", _("none")
        DESIGNER = "designer", _("designer")
        HORECA = "horeca", _("HoReCa")
        DEVELOPER = "developer", _("developer")

    class Gender(models.TextChoices):
        UNKNOWN = "", _("not stated")
        FEMALE = "female", _("female")
        MALE = "male", _("male")

    # Empty only once anonymised. Unique among active customers: a merged duplicate keeps its phone as a redirect.
    phone = PhoneNumberField(
        _("phone"), null=True, blank=True, help_text=_("Stored in E.164, e.g. +79161234567; any format is accepted.")
    )
    email = models.EmailField(_("email"), blank=True, help_text=_("Stored lower-case."))
    email_validated_at = models.DateTimeField(_("email validated at"), null=True, blank=True)
    name = models.CharField(_("name"), max_length=200, blank=True)
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    gender = models.CharField(_("gender"), max_length=10, choices=Gender.choices, blank=True, default="")
    card_number = models.CharField(_("card number"), max_length=32, null=True, blank=True, unique=True)
    kind = models.CharField(_("customer kind"), max_length=10, choices=Kind.choices, default=Kind.RETAIL)
    company = models.CharField(_("company"), max_length=200, blank=True)
    b2b_role = models.CharField(_("B2B role"), max_length=20, choices=B2bRole.choices, blank=True, default="")
    membership = models.CharField(
        _("membership"), max_length=20, choices=Membership.choices, default=Membership.NON_MEMBER
    )
    joined_at = models.DateTimeField(_("joined at"), null=True, blank=True)
    join_channel = models.ForeignKey(
        Channel,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("registration channel"),
    )
    registration_store = models.ForeignKey(
        Store,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("registration store"),
    )
    language = models.CharField(_("preferred language"), max_length=10, choices=settings.LANGUAGES, default="ru")
    merged_into = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="merged_duplicates",
        db_index=False,  # the partial index customer_merged serves it
        verbose_name=_("merged into"),
        help_text=_("A merged duplicate is kept as a redirect to the customer it was merged into."),
    )
    merged_at = models.DateTimeField(_("merged at"), null=True, blank=True)
    anonymised_at = models.DateTimeField(_("anonymised at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        permissions = [
            ("merge_customer", _("Can merge duplicate customers")),
            ("anonymise_customer", _("Can anonymise customers")),
            ("block_customer", _("Can block and unblock customers")),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["phone"], condition=Q(merged_into__isnull=True), name="customer_phone_unique_active"
            ),
            models.CheckConstraint(
                condition=Q(membership__in=["non_member", "member", "blocked", "anonymised"]),
                name="customer_membership_valid",
            ),
            # A member has a join date; a non-member has none.
            models.CheckConstraint(
                condition=~Q(membership="member", joined_at__isnull=True)
                & ~Q(membership="non_member", joined_at__isnull=False),
                name="customer_joined_at_matches_membership",
            ),
            models.CheckConstraint(condition=Q(kind__in=["retail", "b2b"]), name="customer_kind_valid"),
            models.CheckConstraint(condition=Q(kind="b2b") | Q(b2b_role=""), name="customer_b2b_role_only_b2b"),
            # Only an anonymised customer has no phone, and an anonymised one keeps no personal data.
            models.CheckConstraint(
                condition=Q(membership="anonymised") | Q(phone__isnull=False), name="customer_phone_required"
            ),
            models.CheckConstraint(
                condition=~Q(membership="anonymised")
                | Q(phone__isnull=True, email="", name="", birth_date__isnull=True, card_number__isnull=True),
                name="customer_anonymised_has_no_personal_data",
            ),
            models.CheckConstraint(
                condition=Q(merged_into__isnull=True, merged_at__isnull=True)
                | Q(merged_into__isnull=False, merged_at__isnull=False),
                name="customer_merged_at_with_target",
            ),
            models.CheckConstraint(
                condition=Q(email_validated_at__isnull=True) | ~Q(email=""), name="customer_validated_email_present"
            ),
        ]
        indexes = [
            # Lookups by email (identify, admin search); emails are stored lower-case.
            models.Index(fields=["email"], condition=~Q(email=""), name="customer_email"),
            models.Index(fields=["membership", "-created_at"], name="customer_membership_recent"),
            models.Index(fields=["merged_into"], condition=Q(merged_into__isnull=False), name="customer_merged"),
            # Phone lookups that include merged redirects (identify, admin search): the unique constraint's
            # index covers only active customers and cannot serve them.
            models.Index(fields=["phone"], name="customer_phone"),
            # The admin list's filters with rare values, newest first (F-STAFF-4). The name search's trigram index
            # is PostgreSQL's only and kept out of this state: customers migration 0003.
            models.Index(fields=["-id"], condition=Q(kind="b2b"), name="customer_b2b_recent"),
            models.Index(
                fields=["-id"], condition=Q(email_validated_at__isnull=False), name="customer_email_validated"
            ),
        ]

    def __str__(self) -> str:
        if self.membership == self.Membership.ANONYMISED:
            return str(_("Anonymised customer #%(id)s") % {"id": self.pk})
        name = self.name or _("Customer")
        return f"{name} ({self.phone})"

    @property
    def is_member(self) -> bool:
        return self.membership == self.Membership.MEMBER

    @property
    def email_validated(self) -> bool:
        return self.email_validated_at is not None


class ExternalId(models.Model):
    """The customer's id in another system (site user id, ERP code): unique per channel (F-ID-1)."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="external_ids", verbose_name=_("customer")
    )
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="+", verbose_name=_("channel"))
    external_id = models.CharField(_("external id"), max_length=100)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("external id")
        verbose_name_plural = _("external ids")
        constraints = [
            models.UniqueConstraint(fields=["channel", "external_id"], name="external_id_unique_per_channel"),
            models.UniqueConstraint(fields=["customer", "channel"], name="external_id_one_per_customer_channel"),
        ]

    def __str__(self) -> str:
        return f"{self.channel_id}:{self.external_id}"


class ConsentChannel(models.TextChoices):
    SMS = "sms", _("SMS")
    EMAIL = "email", _("email")
    PUSH = "push", _("push")
    PHONE_CALL = "phone_call", _("phone call")


class Consent(models.Model):
    """The current marketing consent of a customer on one channel; its history is in ``ConsentEvent``."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="consents", verbose_name=_("customer")
    )
    channel = models.CharField(_("channel"), max_length=20, choices=ConsentChannel.choices)
    granted = models.BooleanField(_("granted"))
    source = models.CharField(_("source"), max_length=50)
    text_version = models.CharField(_("text version"), max_length=50, blank=True)
    changed_at = models.DateTimeField(_("changed at"))

    class Meta:
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        constraints = [models.UniqueConstraint(fields=["customer", "channel"], name="consent_unique_per_channel")]

    def __str__(self) -> str:
        return f"{self.get_channel_display()}: {'+' if self.granted else '-'}"


class ActorStamped(models.Model):
    """Who recorded a history row — a channel (API) or a staff user (admin); neither for a job — and when."""

    actor_channel = models.ForeignKey(
        Channel, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("by channel")
    )
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by staff user"),
    )
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        abstract = True


class ConsentEvent(ActorStamped):
    """One grant or revocation: who recorded it, where it came from and the text the customer saw (F-ID-5)."""

    class Source(models.TextChoices):
        REGISTRATION = "registration", _("registration SMS")
        EMAIL_VALIDATION = "email_validation", _("email validation")
        API = "api", _("channel API")
        ADMIN = "admin", _("admin")
        MERGE = "merge", _("merge")
        ANONYMISATION = "anonymisation", _("anonymisation")

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="consent_events", verbose_name=_("customer")
    )
    channel = models.CharField(_("channel"), max_length=20, choices=ConsentChannel.choices)
    granted = models.BooleanField(_("granted"))
    source = models.CharField(_("source"), max_length=50, choices=Source.choices)
    text_version = models.CharField(_("text version"), max_length=50, blank=True)

    class Meta:
        verbose_name = _("consent event")
        verbose_name_plural = _("consent history")
        indexes = [models.Index(fields=["customer", "-created_at"], name="consent_event_history")]

    def __str__(self) -> str:
        return f"{self.channel} {'granted' if self.granted else 'revoked'} ({self.source})"


class CustomerChange(ActorStamped):
    """One change of a customer: who (staff user or channel), when, why and each field's before/after."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="changes", verbose_name=_("customer"))
    action = models.CharField(_("action"), max_length=30)
    changes = models.JSONField(_("changes"), default=dict, blank=True, help_text=_("field: [before, after]"))
    reason = models.TextField(_("reason"), blank=True)

    class Meta:
        verbose_name = _("customer change")
        verbose_name_plural = _("customer history")
        indexes = [models.Index(fields=["customer", "-created_at"], name="customer_change_history")]

    def __str__(self) -> str:
        return f"{self.action} @ {self.created_at:%Y-%m-%d %H:%M}"


class SmsCode(models.Model):
    """A one-time registration code sent by SMS (F-ID-2). Only its keyed hash is stored."""

    phone = PhoneNumberField(_("phone"))
    code_hash = models.CharField(max_length=64, editable=False)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    channel = models.ForeignKey(
        Channel, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("channel")
    )
    created_at = models.DateTimeField(_("created at"))
    expires_at = models.DateTimeField(_("expires at"))
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)

    class Meta:
        verbose_name = _("SMS code")
        verbose_name_plural = _("SMS codes")
        indexes = [models.Index(fields=["phone", "-created_at"], name="sms_code_by_phone")]

    def __str__(self) -> str:
        return f"{self.phone} @ {self.created_at:%Y-%m-%d %H:%M}"
