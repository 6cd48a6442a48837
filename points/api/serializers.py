"""Input and Output serializers of the points API, one pair per use case. Amounts are strings with 2 places."""

from decimal import Decimal

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api.plain_input import NotPlain, boolean, decimal_reader, integer_reader, read, readers
from points.models import POINTS, BalanceType, Entry, Hold, LotKind

MAX_EXPIRING_WITHIN_DAYS = 3650
MAX_HOLD_TIMEOUT_SECONDS = 7 * 24 * 3600


class Points(serializers.DecimalField):
    """A points amount: at most 12 digits before the point and 2 after, rendered as a string."""

    def __init__(self, **kwargs):
        super().__init__(max_digits=POINTS["max_digits"], decimal_places=POINTS["decimal_places"], **kwargs)


class BalanceTypeCode(serializers.SlugField):
    """The code of an existing balance type; the installation default when omitted."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", "Balance type code, e.g. `retail` or `b2b`. Default: `retail`.")
        super().__init__(max_length=30, **kwargs)

    def get_default(self):
        return settings.POINTS_DEFAULT_BALANCE_TYPE

    def to_internal_value(self, data):
        code = super().to_internal_value(data)
        # Checked here, before the field's validators (which refuse NUL) run: PostgreSQL refuses NUL in text.
        if "\x00" in code or not BalanceType.objects.filter(code=code).exists():
            raise serializers.ValidationError(_("No such balance type."), code="unknown_balance_type")
        return code


# --- reads -----------------------------------------------------------------------------------


class BalanceQuery(serializers.Serializer):
    balance_type = BalanceTypeCode()
    expiring_within_days = serializers.IntegerField(
        required=False,
        default=30,
        min_value=0,
        max_value=MAX_EXPIRING_WITHIN_DAYS,
        help_text="What counts as expiring soon, in days from now.",
    )


class HistoryQuery(serializers.Serializer):
    balance_type = BalanceTypeCode()


class BalanceOutput(serializers.Serializer):
    balance_type = serializers.CharField()
    available = Points(help_text="Spendable now.")
    pending = Points(help_text="Accrued, not yet spendable (e.g. until delivery).")
    held = Points(help_text="Reserved by open holds.")
    debt = Points(help_text="Owed after a clawback; paid from the next points that become available.")
    expiring_soon = Points(help_text="Available points that expire within `expiring_within_days`.")
    expiring_within_days = serializers.IntegerField()


class AllocationOutput(serializers.Serializer):
    lot_id = serializers.IntegerField()
    lot_kind = serializers.ChoiceField(source="lot.kind", choices=LotKind.choices)
    lot_expires_at = serializers.DateTimeField(source="lot.expires_at", allow_null=True)
    points = serializers.SerializerMethodField(help_text="How many of the lot's points this line touched.")
    remaining_delta = Points(help_text="Change of the lot's unspent points.")
    held_delta = Points(help_text="Change of the lot's points reserved by holds.")

    @extend_schema_field(Points())
    def get_points(self, allocation) -> str:
        # A hold moves points from remaining to held: both deltas are the same points, not twice as many.
        moved = max(abs(allocation.remaining_delta), abs(allocation.held_delta))
        return f"{moved.quantize(Decimal('0.01'))}"


class EntryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=Entry.Kind.choices)
    amount = Points(help_text="Points the operation moved (positive).")
    available_delta = Points()
    pending_delta = Points()
    held_delta = Points()
    debt_delta = Points()
    created_at = serializers.DateTimeField()
    reason = serializers.CharField()
    operation_key = serializers.CharField()
    hold_id = serializers.IntegerField(allow_null=True)
    reverses_id = serializers.IntegerField(allow_null=True, help_text="The redemption a refund gives back.")
    source_type = serializers.SerializerMethodField(
        help_text="What the points came from (e.g. `order_line`, `customer` for a welcome or email bonus): the "
        "source of the first lot the line created or changed; empty if none."
    )
    source_id = serializers.SerializerMethodField(help_text="The id of that source, e.g. the order line.")
    allocations = AllocationOutput(many=True, help_text="The lots this line changed, e.g. what a spend consumed.")

    def get_source_type(self, entry: Entry) -> str:
        lot = self._first_lot(entry)
        return lot.source_type if lot else ""

    def get_source_id(self, entry: Entry) -> str:
        lot = self._first_lot(entry)
        return lot.source_id if lot else ""

    @staticmethod
    def _first_lot(entry: Entry):
        # From the prefetched allocations (ordered by pk): no query per line.
        allocations = entry.allocations.all()
        return allocations[0].lot if allocations else None


# --- holds -----------------------------------------------------------------------------------


class HoldCreateInput(serializers.Serializer):
    amount = Points(min_value=Decimal("0.01"))
    first_order = serializers.BooleanField(
        required=False, default=False, help_text="The order is the customer's first: welcome points may be held."
    )
    timeout_seconds = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=1,
        max_value=MAX_HOLD_TIMEOUT_SECONDS,
        help_text="Release the hold by itself after this long. Default: the installation's hold timeout.",
    )
    balance_type = BalanceTypeCode()


class HoldCommitInput(serializers.Serializer):
    amount = Points(
        min_value=Decimal("0.01"),
        required=False,
        allow_null=True,
        default=None,
        help_text="Spend only this much of the hold and release the rest. Default: all of it.",
    )


# The two calls of a redemption read their usual request without the serializers (core.api.plain_input): what the
# readers accept, the serializers accept and validate to the same values; anything else, and every error, goes
# through them. A balance type named in the request always does: the serializer checks that it exists.
_HOLD_READERS = readers(
    HoldCreateInput,
    {
        "amount": decimal_reader(HoldCreateInput._declared_fields["amount"]),
        "first_order": boolean,
        "timeout_seconds": integer_reader(HoldCreateInput._declared_fields["timeout_seconds"]),
        "balance_type": None,  # read apart
    },
)
_COMMIT_READERS = readers(HoldCommitInput, {"amount": decimal_reader(HoldCommitInput._declared_fields["amount"])})


def hold_input_plain(data) -> dict | None:
    """``HoldCreateInput(data=data).validated_data`` for a plain request, or None: validate it with the serializer."""
    if type(data) is not dict or "balance_type" in data:
        return None
    try:
        validated = read(data, _HOLD_READERS)
    except NotPlain:
        return None
    validated["balance_type"] = HoldCreateInput._declared_fields["balance_type"].get_default()
    return validated


def hold_commit_input_plain(data) -> dict | None:
    """``HoldCommitInput(data=data).validated_data`` for a plain request, or None: validate it with the serializer."""
    if type(data) is not dict:
        return None
    try:
        return read(data, _COMMIT_READERS)
    except NotPlain:
        return None


class HoldOutput(serializers.Serializer):
    id = serializers.IntegerField()
    customer_id = serializers.IntegerField(source="account.customer_id")
    balance_type = serializers.CharField(source="account.balance_type.code")
    amount = Points()
    state = serializers.ChoiceField(choices=Hold.State.choices)
    expires_at = serializers.DateTimeField()
    created_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)
    balance = BalanceOutput(help_text="The customer's balance of this type after the operation.")


# The answers of the two calls of a redemption (hold, commit) built by hand: DRF's per-field dispatch was a tenth of
# such a request's CPU. Each field is still rendered by the documented serializer's own field; a test holds the two
# to the same output.
_HOLD_FIELDS, _BALANCE_FIELDS = HoldOutput._declared_fields, BalanceOutput._declared_fields
_POINTS = _HOLD_FIELDS["amount"]
_DATETIME = _HOLD_FIELDS["expires_at"]
assert all(type(_BALANCE_FIELDS[name]) is Points for name in ("available", "pending", "held", "debt", "expiring_soon"))


def _nullable(field: serializers.Field, value):
    return None if value is None else field.to_representation(value)


def balance_answer(balance) -> dict:
    """``BalanceOutput(balance).data``."""
    return {
        "balance_type": balance.balance_type,
        "available": _POINTS.to_representation(balance.available),
        "pending": _POINTS.to_representation(balance.pending),
        "held": _POINTS.to_representation(balance.held),
        "debt": _POINTS.to_representation(balance.debt),
        "expiring_soon": _nullable(_POINTS, balance.expiring_soon),
        "expiring_within_days": balance.expiring_within_days,
    }


def hold_answer(hold: Hold) -> dict:
    """``HoldOutput(hold).data`` of a hold carrying its ``balance``."""
    return {
        "id": hold.pk,
        "customer_id": hold.account.customer_id,
        "balance_type": hold.account.balance_type.code,
        "amount": _POINTS.to_representation(hold.amount),
        "state": str(hold.state),
        "expires_at": _DATETIME.to_representation(hold.expires_at),
        "created_at": _DATETIME.to_representation(hold.created_at),
        "closed_at": _nullable(_DATETIME, hold.closed_at),
        "balance": balance_answer(hold.balance),
    }


# --- adjustments -----------------------------------------------------------------------------


class AdjustmentCreateInput(serializers.Serializer):
    amount = Points(help_text="Signed: positive adds points (a new lot), negative removes spendable points.")
    reason = serializers.CharField(max_length=1000, help_text="Why: kept in the journal for the audit.")
    balance_type = BalanceTypeCode()
    expires_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="When added points expire. Default: the lifetime configured for manual points.",
    )

    def validate_amount(self, amount: Decimal) -> Decimal:
        if amount == 0:
            raise serializers.ValidationError(_("The amount must not be zero."), code="zero")
        return amount

    def validate_expires_at(self, expires_at):
        if expires_at is not None and expires_at <= timezone.now():
            raise serializers.ValidationError(_("The expiry must be in the future."), code="in_the_past")
        return expires_at

    def validate(self, data: dict) -> dict:
        if data.get("expires_at") is not None and data["amount"] < 0:
            raise serializers.ValidationError(
                {"expires_at": [_("Only added points get an expiry.")]}, code="expiry_on_removal"
            )
        return data


class AdjustmentOutput(serializers.Serializer):
    operation_key = serializers.CharField()
    entries = EntryOutput(many=True, help_text="The journal lines written (an addition may also settle debt).")
    balance = BalanceOutput(help_text="The customer's balance of this type after the adjustment.")
