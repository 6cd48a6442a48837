from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ChannelKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "integrations.authentication.ChannelKeyAuthentication"
    name = "channelKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A channel API key issued in the admin (Integrations → Channels → API keys).",
        }
