from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from integrations.scopes import Scope

RATE_VALIDATOR = RegexValidator(
    r"^\d+/(s|sec|second|m|min|minute|h|hour|d|day)$", _("Use the form 100/min (per s, min, hour or day).")
)


class Channel(models.Model):
    """A system that talks to the API (web site, showroom till, ERP …); every API key belongs to one."""

    class Kind(models.TextChoices):
        SITE = "site", _("Web site")
        MOBILE_APP = "mobile_app", _("Mobile app")
        CALL_CENTRE = "call_centre", _("Call centre")
        SHOWROOM_POS = "showroom_pos", _("Showroom POS")
        ERP = "erp", _("ERP")
        PARTNER = "partner", _("Partner")

    code = models.SlugField(_("code"), max_length=50, unique=True, help_text=_("Stable identifier used in logs."))
    name = models.CharField(pgettext_lazy("title of a thing", "name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    is_active = models.BooleanField(_("active"), default=True)
    scopes = models.JSONField(_("scopes"), default=list, blank=True)
    rate_limit = models.CharField(
        _("rate limit"),
        max_length=20,
        blank=True,
        validators=[RATE_VALIDATOR],
        help_text=_("Requests allowed for this channel, e.g. 600/min. Empty: the installation default."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("channel")
        verbose_name_plural = _("channels")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=["site", "mobile_app", "call_centre", "showroom_pos", "erp", "partner"]),
                name="channel_kind_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def has_scope(self, scope: Scope | str) -> bool:
        return scope in self.scopes


class ApiKey(models.Model):
    """A secret a channel authenticates with. Only its SHA-256 is stored; the key is shown once."""

    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="api_keys", verbose_name=_("channel"))
    name = models.CharField(
        pgettext_lazy("title of a thing", "name"),
        max_length=100,
        help_text=_("Where it is used, e.g. 'till 3, Moscow'."),
    )
    prefix = models.CharField(_("prefix"), max_length=16, help_text=_("First characters, to recognise the key."))
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("revoked by"),
    )

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class IdempotencyKey(models.Model):
    """The first answer to a channel's mutating request, replayed for every retry with the same key."""

    class State(models.TextChoices):
        IN_PROGRESS = "in_progress", _("in progress")
        COMPLETED = "completed", _("completed")

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="+", verbose_name=_("channel"))
    key = models.CharField(_("key"), max_length=255)
    method = models.CharField(_("method"), max_length=10)
    path = models.CharField(_("path"), max_length=500)
    fingerprint = models.CharField(_("request fingerprint"), max_length=64)
    state = models.CharField(_("state"), max_length=20, choices=State.choices, default=State.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(_("response status"), null=True, blank=True)
    # The exact bytes sent, so a replay is byte-for-byte identical (jsonb would reorder keys).
    response_body = models.TextField(_("response body"), blank=True)
    created_at = models.DateTimeField(_("created at"))
    locked_at = models.DateTimeField(_("locked at"), help_text=_("When the request holding the key started."))
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires at"), db_index=True)

    class Meta:
        verbose_name = _("idempotency key")
        verbose_name_plural = _("idempotency keys")
        constraints = [
            models.UniqueConstraint(fields=["channel", "key"], name="idempotency_key_unique_per_channel"),
            models.CheckConstraint(
                condition=models.Q(state="in_progress", response_status__isnull=True, completed_at__isnull=True)
                | models.Q(state="completed", response_status__isnull=False, completed_at__isnull=False),
                name="idempotency_key_completed_has_response",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel_id}:{self.key}"


class Store(models.Model):
    """A showroom or shop: where a customer registered, where an order was placed (SPEC F-ID-1, F-ORD-1)."""

    code = models.SlugField(_("code"), max_length=50, unique=True, help_text=_("As the ERP and tills know it."))
    name = models.CharField(pgettext_lazy("title of a thing", "name"), max_length=200)
    city = models.CharField(_("city"), max_length=100, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("store")
        verbose_name_plural = _("stores")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
