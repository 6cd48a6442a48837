import json
import logging
from logging.config import DictConfigurator

import pytest
from django.conf import settings


@pytest.mark.django_db
def test_each_request_is_logged_once_with_channel_status_and_duration(api, channel, caplog):
    caplog.set_level(logging.INFO, logger="loyalty_crm.request")

    api.get("/api/v1/customers")

    records = [record for record in caplog.records if record.name == "loyalty_crm.request"]
    assert len(records) == 1
    record = records[0]
    assert (record.method, record.path, record.status, record.channel) == (
        "GET",
        "/api/v1/customers",
        200,
        channel.code,
    )
    assert record.duration_ms >= 0


@pytest.mark.django_db
def test_staff_requests_are_logged_with_the_user(admin_client, admin_user, caplog):
    caplog.set_level(logging.INFO, logger="loyalty_crm.request")

    admin_client.get("/admin/")

    record = next(record for record in caplog.records if record.name == "loyalty_crm.request")
    assert (record.user_id, record.channel) == (admin_user.pk, None)


def test_json_format_emits_one_object_per_line_with_the_request_fields():
    formatter = DictConfigurator({}).configure_formatter(dict(settings.LOGGING["formatters"]["json"]))
    record = logging.LogRecord("loyalty_crm.request", logging.INFO, __file__, 1, "GET /x 200", None, None)
    record.__dict__.update({"channel": "site", "status": 200, "duration_ms": 3.5})

    line = json.loads(formatter.format(record))

    assert line["level"] == "INFO"
    assert line["logger"] == "loyalty_crm.request"
    assert line["message"] == "GET /x 200"
    assert (line["channel"], line["status"], line["duration_ms"]) == ("site", 200, 3.5)
