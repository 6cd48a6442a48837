from phonenumber_field.serializerfields import PhoneNumberField
from rest_framework import serializers

from customers.models import Customer


class CustomerCreateInput(serializers.Serializer):
    phone = PhoneNumberField(help_text="Any common format; stored as E.164 (+79161234567).")
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class CustomerOutput(serializers.ModelSerializer):
    phone = serializers.CharField(source="phone.as_e164", read_only=True)

    class Meta:
        model = Customer
        fields = ["id", "phone", "name", "membership", "joined_at", "created_at"]
