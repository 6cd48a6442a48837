"""Deploy checks (``manage.py check --deploy``): a production that would not actually send SMS."""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

LOCAL_SMS_BACKENDS = ("integrations.sms.ConsoleSmsBackend", "integrations.sms.LocmemSmsBackend")


@register(Tags.compatibility, deploy=True)
def check_sms_backend(app_configs, **kwargs):
    if settings.SMS_BACKEND in LOCAL_SMS_BACKENDS:
        return [
            Warning(
                "SMS_BACKEND only logs or keeps messages: registration codes would be written to the log and "
                "never reach customers.",
                hint="Set SMS_BACKEND=integrations.sms.HttpGatewaySmsBackend with SMS_GATEWAY_URL and "
                "SMS_GATEWAY_TOKEN.",
                id="integrations.W001",
            )
        ]
    if settings.SMS_BACKEND == "integrations.sms.HttpGatewaySmsBackend" and not settings.SMS_GATEWAY_URL:
        return [Error("SMS_BACKEND is the HTTP gateway but SMS_GATEWAY_URL is empty.", id="integrations.E001")]
    return []
