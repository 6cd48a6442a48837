"""Sending SMS through a pluggable backend (SPEC F-ID-2, F-CMP-7), chosen by ``settings.SMS_BACKEND``.

Like Django's email backends: the log (default, for development), an HTTP gateway, or memory (tests read
``integrations.sms.outbox``).
"""

from __future__ import annotations

import json
import logging
import urllib.request
from dataclasses import dataclass

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SmsMessage:
    phone: str  # E.164
    text: str


class SmsError(Exception):
    """The gateway refused or could not be reached; the sending task retries."""


class BaseSmsBackend:
    def send(self, message: SmsMessage) -> None:
        raise NotImplementedError


class ConsoleSmsBackend(BaseSmsBackend):
    """Writes each message to the log: development and the embedded default."""

    def send(self, message: SmsMessage) -> None:
        logger.info("SMS to %s: %s", message.phone, message.text, extra={"sms_phone": message.phone})


outbox: list[SmsMessage] = []


class LocmemSmsBackend(BaseSmsBackend):
    """Keeps messages in ``outbox`` (tests)."""

    def send(self, message: SmsMessage) -> None:
        outbox.append(message)


class HttpGatewaySmsBackend(BaseSmsBackend):
    """POSTs ``{"to", "text", "sender"}`` as JSON to ``SMS_GATEWAY_URL`` with ``Authorization: Bearer
    SMS_GATEWAY_TOKEN``; any 2xx is success. Gateways with another format get a subclass overriding ``payload``."""

    def payload(self, message: SmsMessage) -> dict:
        return {"to": message.phone, "text": message.text, "sender": settings.SMS_SENDER}

    def send(self, message: SmsMessage) -> None:
        if not settings.SMS_GATEWAY_URL:
            raise SmsError("SMS_GATEWAY_URL is not set")
        request = urllib.request.Request(
            settings.SMS_GATEWAY_URL,
            data=json.dumps(self.payload(message)).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {settings.SMS_GATEWAY_TOKEN}"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=settings.SMS_GATEWAY_TIMEOUT_SECONDS) as response:
                status = response.status
        except OSError as error:  # URLError, HTTPError (4xx/5xx) and timeouts are all OSErrors
            raise SmsError(f"SMS gateway failed: {error}") from error
        if not 200 <= status < 300:
            raise SmsError(f"SMS gateway answered {status}")


def get_sms_backend() -> BaseSmsBackend:
    return import_string(settings.SMS_BACKEND)()


def send_sms(*, phone: str, text: str) -> None:
    get_sms_backend().send(SmsMessage(phone=phone, text=text))
