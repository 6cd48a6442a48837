"""Input and Output serializers of the customers API, one pair per use case.

Inputs check the shape (types, lengths, choices, valid phone numbers, known store codes) and answer
``validation_error`` with per-field details; the services own the rules (uniqueness, B2B roles, birth
dates, membership) and answer with their own error codes.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_serializer
from phonenumber_field.serializerfields import PhoneNumberField
from rest_framework import serializers

from customers.models import ConsentChannel, ConsentEvent, Customer
from integrations.models import Store
from points.api.serializers import BalanceOutput

PHONE_HELP = "Any common format: `8 (916) 123-45-67`, `+7 916 1234567`, `9161234567`. Stored as E.164."
TIER_HELP = "The customer's tier code (e.g. `gold`); its perks: `GET /customers/{id}/tier`. Null without a programme."


class Phone(PhoneNumberField):
    """A phone as typed, read in ``PHONENUMBER_DEFAULT_REGION`` without a country code; a field error if it is
    not a valid number."""

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", PHONE_HELP)
        super().__init__(max_length=32, **kwargs)


class StoreCode(serializers.SlugField):
    """The code of a store or showroom, as the ERP and tills know it → the ``Store``."""

    default_error_messages = {"unknown_store": _("No store with the code “{code}”.")}

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", "Store or showroom code, as the ERP and tills know it.")
        super().__init__(max_length=50, **kwargs)

    def run_validation(self, data=serializers.empty) -> Store | None:
        code = super().run_validation(data)  # the slug's own checks run on the code, not on the store
        if code is None:
            return None
        store = Store.objects.filter(code=code).first()
        if store is None:
            self.fail("unknown_store", code=code)
        return store

    def to_representation(self, store: Store) -> str:
        return store.code


# --- profile ---------------------------------------------------------------------------------


class ExternalIdOutput(serializers.Serializer):
    channel = serializers.CharField(source="channel.code", help_text="Code of the channel whose id this is.")
    external_id = serializers.CharField()


# One component name for the profile and the bodies that create and change it: `Customer`, `CustomerRequest`,
# `PatchedCustomerRequest` in generated clients, sharing one `CustomerKindEnum`.
@extend_schema_serializer(component_name="Customer")
class CustomerOutput(serializers.ModelSerializer):
    """The profile. Render instances from ``customer_profiles()`` (related rows loaded in bulk)."""

    phone = serializers.SerializerMethodField(help_text="E.164; null only once anonymised.")
    email = serializers.CharField(read_only=True, help_text="Lower-case; empty if none.")
    email_validated = serializers.BooleanField(read_only=True)
    join_channel = serializers.SlugRelatedField(
        slug_field="code",
        read_only=True,
        allow_null=True,
        help_text="Code of the channel the customer joined (or was recorded) in.",
    )
    registration_store = serializers.SlugRelatedField(
        slug_field="code", read_only=True, allow_null=True, help_text="Code of the store of registration."
    )
    merged_into = serializers.PrimaryKeyRelatedField(
        read_only=True, allow_null=True, help_text="Set on a merged duplicate: the id of the customer to use instead."
    )
    external_ids = ExternalIdOutput(many=True, read_only=True, help_text="The customer's ids in channels' systems.")

    class Meta:
        model = Customer
        fields = [
            "id",
            "phone",
            "email",
            "email_validated",
            "email_validated_at",
            "name",
            "birth_date",
            "gender",
            "card_number",
            "kind",
            "company",
            "b2b_role",
            "language",
            "membership",
            "joined_at",
            "join_channel",
            "registration_store",
            "merged_into",
            "external_ids",
            "created_at",
        ]
        read_only_fields = fields

    def get_phone(self, customer: Customer) -> str | None:
        return customer.phone.as_e164 if customer.phone else None


@extend_schema_serializer(component_name="Customer")
class CustomerCreateInput(serializers.Serializer):
    phone = Phone()
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)
    birth_date = serializers.DateField(required=False, allow_null=True)
    gender = serializers.ChoiceField(choices=Customer.Gender.choices, required=False)
    card_number = serializers.CharField(max_length=32, required=False, allow_null=True, allow_blank=True)
    kind = serializers.ChoiceField(choices=Customer.Kind.choices, required=False)
    company = serializers.CharField(max_length=200, required=False, allow_blank=True)
    b2b_role = serializers.ChoiceField(
        choices=Customer.B2bRole.choices, required=False, help_text="Only for `kind: b2b`."
    )
    language = serializers.ChoiceField(choices=settings.LANGUAGES, required=False)
    store = StoreCode(required=False, allow_null=True, help_text="Code of the store where the customer was seen.")
    external_id = serializers.CharField(
        max_length=100, required=False, allow_blank=True, help_text="The customer's id in the calling channel."
    )


@extend_schema_serializer(component_name="Customer")
class CustomerUpdateInput(serializers.Serializer):
    """Only the fields given change (PATCH)."""

    phone = Phone(required=False)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    email = serializers.EmailField(
        max_length=254, required=False, allow_blank=True, help_text="A changed email is no longer validated."
    )
    birth_date = serializers.DateField(required=False, allow_null=True)
    gender = serializers.ChoiceField(choices=Customer.Gender.choices, required=False)
    card_number = serializers.CharField(max_length=32, required=False, allow_null=True, allow_blank=True)
    kind = serializers.ChoiceField(choices=Customer.Kind.choices, required=False)
    company = serializers.CharField(max_length=200, required=False, allow_blank=True)
    b2b_role = serializers.ChoiceField(choices=Customer.B2bRole.choices, required=False)
    language = serializers.ChoiceField(choices=settings.LANGUAGES, required=False)
    store = StoreCode(
        required=False, allow_null=True, source="registration_store", help_text="Code of the registration store."
    )
    external_id = serializers.CharField(
        max_length=100, required=False, help_text="The customer's id in the calling channel (replaces the previous)."
    )
    reason = serializers.CharField(
        max_length=1000, required=False, allow_blank=True, help_text="Why, for the customer's history."
    )


# --- identification --------------------------------------------------------------------------


class IdentifyQuery(serializers.Serializer):
    phone = Phone(required=False, allow_blank=True)
    card = serializers.CharField(max_length=32, required=False, allow_blank=True, help_text="Loyalty card number.")
    external_id = serializers.CharField(
        max_length=100, required=False, allow_blank=True, help_text="The customer's id in the calling channel."
    )
    email = serializers.CharField(max_length=254, required=False, allow_blank=True, help_text="Case-insensitive.")


class IdentifyOutput(serializers.Serializer):
    customer = CustomerOutput(help_text="The customer found; the survivor if the identifier led to a merged one.")
    redirected_from = serializers.IntegerField(
        allow_null=True, help_text="The merged duplicate the identifier belongs to; null if matched directly."
    )
    membership = serializers.ChoiceField(choices=Customer.Membership.choices)
    tier = serializers.CharField(allow_null=True, help_text=TIER_HELP)
    balance = BalanceOutput(help_text="Points of the customer's balance type (retail or B2B).")


# --- SMS registration ------------------------------------------------------------------------


class SmsCodeRequestInput(serializers.Serializer):
    phone = Phone()


class SmsCodeSentOutput(serializers.Serializer):
    phone = serializers.CharField(source="phone.as_e164", help_text="The number the code went to, E.164.")
    expires_at = serializers.DateTimeField(help_text="The code works until then.")
    resend_after = serializers.DateTimeField(help_text="A new code can be asked for from then on.")


class SmsCodeConfirmInput(serializers.Serializer):
    phone = Phone()
    code = serializers.CharField(max_length=20, help_text="The digits from the SMS.")
    accept_marketing = serializers.BooleanField(
        required=False, default=False, help_text="The customer accepted offers by SMS (and by email, with `email`)."
    )
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    email = serializers.EmailField(
        max_length=254,
        required=False,
        allow_blank=True,
        default="",
        help_text="Stored if the customer has none; a validation link is sent to it.",
    )
    store = StoreCode(required=False, allow_null=True, default=None, help_text="Where the customer registered.")


class RegistrationOutput(serializers.Serializer):
    customer = CustomerOutput()
    joined = serializers.BooleanField(help_text="False: the phone's owner already was a member.")


# --- email validation ------------------------------------------------------------------------


class EmailValidationRequestInput(serializers.Serializer):
    email = serializers.EmailField(
        max_length=254, required=False, help_text="Set (or change) the customer's email first. Default: the current."
    )


class EmailValidationSentOutput(serializers.Serializer):
    email = serializers.EmailField(help_text="Where the link was sent.")
    sent = serializers.BooleanField(help_text="Always true: the email is on its way.")


class EmailValidationConfirmInput(serializers.Serializer):
    token = serializers.CharField(max_length=1000, help_text="The token from the link in the email.")
    accept_marketing = serializers.BooleanField(
        required=False, default=False, help_text="The customer accepted offers by email."
    )


# --- consents --------------------------------------------------------------------------------


class ConsentOutput(serializers.Serializer):
    channel = serializers.ChoiceField(choices=ConsentChannel.choices)
    granted = serializers.BooleanField(allow_null=True, help_text="Null: the customer was never asked.")
    source = serializers.ChoiceField(choices=ConsentEvent.Source.choices, allow_null=True)
    text_version = serializers.CharField(allow_null=True, help_text="Version of the consent text shown.")
    changed_at = serializers.DateTimeField(allow_null=True)


class ConsentEventOutput(serializers.Serializer):
    channel = serializers.ChoiceField(choices=ConsentChannel.choices)
    granted = serializers.BooleanField()
    source = serializers.ChoiceField(choices=ConsentEvent.Source.choices)
    text_version = serializers.CharField()
    by_channel = serializers.CharField(
        source="actor_channel.code", allow_null=True, help_text="Code of the channel that recorded it."
    )
    by_user = serializers.CharField(
        source="actor_user.username", allow_null=True, help_text="The staff user who recorded it."
    )
    created_at = serializers.DateTimeField()


class ConsentsOutput(serializers.Serializer):
    consents = ConsentOutput(many=True, help_text="The current decision on every channel.")
    history = ConsentEventOutput(many=True, help_text="The latest changes, newest first (at most 100).")


class ConsentSetInput(serializers.Serializer):
    channel = serializers.ChoiceField(choices=ConsentChannel.choices)
    granted = serializers.BooleanField()
    text_version = serializers.CharField(
        max_length=50,
        required=False,
        default=lambda: settings.CONSENT_TEXT_VERSION,
        help_text="Version of the consent text the customer saw. Default: the current one (`CONSENT_TEXT_VERSION`).",
    )


# --- merge -----------------------------------------------------------------------------------


class MergeInput(serializers.Serializer):
    duplicate_id = serializers.IntegerField(
        min_value=1, help_text="The customer to merge into this one; it stays as a redirect."
    )
    reason = serializers.CharField(
        max_length=1000, required=False, allow_blank=True, default="", help_text="Why (required; kept in history)."
    )


# --- personal account ------------------------------------------------------------------------


class AccountOutput(serializers.Serializer):
    profile = CustomerOutput()
    tier = serializers.CharField(allow_null=True, help_text=TIER_HELP)
    balance = BalanceOutput(help_text="Points of the customer's balance type (retail or B2B).")
    consents = ConsentOutput(many=True, help_text="The current decision on every channel.")
