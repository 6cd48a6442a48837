from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from core.admin import RulesNamingProtectMixin
from integrations.models import ApiKey, Channel, IdempotencyKey, Store
from integrations.scopes import Scope
from integrations.services.channels import api_key_issue, api_key_revoke, channel_scopes_validate


class ChannelForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        label=_("scopes"), choices=Scope.choices, required=False, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = Channel
        fields = ["code", "name", "kind", "is_active", "scopes", "rate_limit"]

    def clean_scopes(self) -> list[str]:
        return channel_scopes_validate(self.cleaned_data["scopes"])


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    fields = ["prefix", "name", "created_at", "created_by", "last_used_at", "revoked_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Channel | None = None) -> bool:
        return False  # keys are issued through "Add API key", which shows the secret once


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelForm
    list_display = ["name", "code", "kind", "is_active", "active_keys", "rate_limit"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "code"]
    prepopulated_fields = {"code": ["name"]}
    inlines = [ApiKeyInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Channel]:
        return (
            super()
            .get_queryset(request)
            .annotate(active_key_count=Count("api_keys", filter=Q(api_keys__revoked_at__isnull=True)))
        )

    @admin.display(description=_("active API keys"), ordering="active_key_count")
    def active_keys(self, channel: Channel) -> int:
        return channel.active_key_count


class ApiKeyIssueForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ["channel", "name"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "name", "channel", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["channel", ("revoked_at", admin.EmptyFieldListFilter)]
    list_select_related = ["channel"]
    search_fields = ["prefix", "name", "channel__name"]
    actions = ["revoke_keys"]
    readonly_fields = [
        "channel",
        "name",
        "prefix",
        "created_at",
        "created_by",
        "last_used_at",
        "revoked_at",
        "revoked_by",
    ]

    def get_form(self, request: HttpRequest, obj: ApiKey | None = None, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyIssueForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        return self.readonly_fields if obj is not None else []

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        return self.readonly_fields if obj is not None else ["channel", "name"]

    def has_delete_permission(self, request: HttpRequest, obj: ApiKey | None = None) -> bool:
        return False  # revoke instead: the key row is evidence of who could call the API

    def save_model(self, request: HttpRequest, obj: ApiKey, form: forms.ModelForm, change: bool) -> None:
        if change:
            return  # nothing on an issued key is editable
        issued = api_key_issue(channel=obj.channel, name=obj.name, created_by=request.user)
        obj.pk = issued.api_key.pk
        self.message_user(
            request,
            _("API key issued for %(channel)s. Copy it now — it will not be shown again: %(key)s")
            % {"channel": obj.channel, "key": issued.raw_key},
            messages.WARNING,
        )

    def response_add(self, request: HttpRequest, obj: ApiKey, post_url_continue: str | None = None):
        return HttpResponseRedirect(reverse("admin:integrations_apikey_change", args=[obj.pk]))

    @admin.action(description=_("Revoke selected API keys"), permissions=["change"])
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        revoked = 0
        for api_key in queryset.filter(revoked_at__isnull=True):
            api_key_revoke(api_key=api_key, revoked_by=request.user)
            revoked += 1
        self.message_user(
            request,
            ngettext("%(count)d API key revoked.", "%(count)d API keys revoked.", revoked) % {"count": revoked},
            messages.SUCCESS,
        )


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(admin.ModelAdmin):
    """Read-only: lets support answer "why did my retry get this answer?"."""

    list_display = ["key", "channel", "method", "path", "state", "response_status", "created_at", "expires_at"]
    list_filter = ["state", "channel"]
    list_select_related = ["channel"]
    search_fields = ["=key"]
    show_full_result_count = False
    sortable_by = ["created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: IdempotencyKey | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: IdempotencyKey | None = None) -> bool:
        return False


@admin.register(Store)
class StoreAdmin(RulesNamingProtectMixin, admin.ModelAdmin):
    list_display = ["code", "name", "city", "is_active"]
    list_filter = ["is_active", "city"]
    search_fields = ["code", "name", "city"]
