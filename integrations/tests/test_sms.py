"""SMS backends: the HTTP gateway against a real local HTTP server, the log backend, the retrying task."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from celery.exceptions import Retry

from integrations.sms import ConsoleSmsBackend, HttpGatewaySmsBackend, SmsError, SmsMessage, send_sms
from integrations.tasks import send_sms_task


class Gateway(BaseHTTPRequestHandler):
    received: list[tuple[dict, str]] = []
    status = 200

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Gateway.received.append((body, self.headers["Authorization"]))
        self.send_response(Gateway.status)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def gateway(settings):
    server = HTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Gateway.received, Gateway.status = [], 200
    settings.SMS_GATEWAY_URL = f"http://127.0.0.1:{server.server_port}/send"
    settings.SMS_GATEWAY_TOKEN = "secret-token"
    settings.SMS_SENDER = "Mebel"
    yield Gateway
    server.shutdown()
    server.server_close()


@pytest.mark.smoke
def test_the_http_gateway_posts_json_with_the_bearer_token(gateway):
    HttpGatewaySmsBackend().send(SmsMessage(phone="+79161234567", text="Your code: 123456"))

    assert gateway.received == [
        ({"to": "+79161234567", "text": "Your code: 123456", "sender": "Mebel"}, "Bearer secret-token")
    ]


def test_a_gateway_error_is_an_sms_error(gateway):
    gateway.status = 503
    with pytest.raises(SmsError):
        HttpGatewaySmsBackend().send(SmsMessage(phone="+79161234567", text="x"))


def test_an_unreachable_or_unset_gateway_is_an_sms_error(settings):
    settings.SMS_GATEWAY_URL = ""
    with pytest.raises(SmsError, match="not set"):
        HttpGatewaySmsBackend().send(SmsMessage(phone="+79161234567", text="x"))
    settings.SMS_GATEWAY_URL = "http://127.0.0.1:9/unreachable"
    with pytest.raises(SmsError):
        HttpGatewaySmsBackend().send(SmsMessage(phone="+79161234567", text="x"))


def test_the_console_backend_logs_the_message(caplog):
    with caplog.at_level("INFO", logger="integrations.sms"):
        ConsoleSmsBackend().send(SmsMessage(phone="+79161234567", text="Your code: 654321"))
    assert "+79161234567" in caplog.text
    assert "654321" in caplog.text


def test_the_configured_backend_is_used(settings, sms_outbox):
    settings.SMS_BACKEND = "integrations.sms.LocmemSmsBackend"
    send_sms(phone="+79161234567", text="hello")
    assert sms_outbox == [SmsMessage(phone="+79161234567", text="hello")]


def test_the_task_retries_while_the_gateway_fails(gateway, settings):
    settings.SMS_BACKEND = "integrations.sms.HttpGatewaySmsBackend"
    gateway.status = 500
    # In eager mode the scheduled retry surfaces as ``Retry`` carrying the gateway's error.
    with pytest.raises(Retry) as raised:
        send_sms_task.delay("+79161234567", "x")
    assert isinstance(raised.value.exc, SmsError)
    assert len(gateway.received) == 1
