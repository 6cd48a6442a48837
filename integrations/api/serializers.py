from rest_framework import serializers

from integrations.models import Channel


class ChannelOutput(serializers.ModelSerializer):
    scopes = serializers.ListField(child=serializers.CharField())
    api_key_prefix = serializers.SerializerMethodField()

    class Meta:
        model = Channel
        fields = ["code", "name", "kind", "scopes", "rate_limit", "api_key_prefix"]

    def get_api_key_prefix(self, channel: Channel) -> str:
        return self.context["request"].auth.prefix
