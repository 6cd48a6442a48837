"""Configuration comes from the environment; the defaults are the embedded ones (SQLite, in-process tasks)."""

import json
import subprocess

import pytest

from tests.helpers import PYTHON, REPO, clean_env

PROBE = (
    "import json; from django.conf import settings as s; print(json.dumps({"
    "'engine': s.DATABASES['default']['ENGINE'], 'name': str(s.DATABASES['default']['NAME']),"
    "'eager': s.CELERY_TASK_ALWAYS_EAGER, 'broker': s.CELERY_BROKER_URL, 'tz': s.TIME_ZONE,"
    "'lang': s.LANGUAGE_CODE, 'currency': s.LOYALTY_CURRENCY, 'debug': s.DEBUG, 'hosts': s.ALLOWED_HOSTS}))"
)


def settings_under(**env: str) -> dict:
    result = subprocess.run(
        [PYTHON, "-c", f"import django; django.setup(); {PROBE}"],
        cwd=REPO,
        env=clean_env(DJANGO_SETTINGS_MODULE="loyalty_crm.settings.local", **env),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


@pytest.mark.smoke
def test_embedded_defaults_are_sqlite_in_the_project_and_in_process_tasks():
    values = settings_under()

    assert values["engine"] == "django.db.backends.sqlite3"
    assert values["name"] == str(REPO / "db.sqlite3")
    assert values["eager"] is True
    assert values["broker"] is None
    assert (values["tz"], values["lang"], values["currency"]) == ("Europe/Moscow", "en", "RUB")


def test_environment_variables_override_every_default():
    values = settings_under(
        DATABASE_URL="postgres://crm:secret@db.internal:5432/crm",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/3",
        TIME_ZONE="Asia/Yekaterinburg",
        LANGUAGE_CODE="ru",
        LOYALTY_CURRENCY="KZT",
        DEBUG="false",
        ALLOWED_HOSTS="crm.example.com,api.example.com",
    )

    assert values["engine"] == "django.db.backends.postgresql"
    assert values["name"] == "crm"
    assert values["eager"] is False
    assert values["broker"] == "redis://127.0.0.1:6379/3"
    assert (values["tz"], values["lang"], values["currency"]) == ("Asia/Yekaterinburg", "ru", "KZT")
    assert values["debug"] is False
    assert values["hosts"] == ["crm.example.com", "api.example.com"]


PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "loyalty_crm.settings.production",
    "SECRET_KEY": "p8Vq!x2#Lr9sT4uW7yZ0aB3cD6eF1gH5iJ8kM2nO4pQ7rS0tU3vX6wY9zA1bC4dE",
    "ALLOWED_HOSTS": "crm.example.com",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/loyalty_crm",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    "SMS_BACKEND": "integrations.sms.HttpGatewaySmsBackend",
    "SMS_GATEWAY_URL": "https://sms.example.com/send",
}


def check_deploy(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=clean_env(**env),
        capture_output=True,
        text=True,
    )


def test_production_settings_pass_check_deploy_with_no_warnings():
    result = check_deploy(**PRODUCTION_ENV)

    assert result.returncode == 0, result.stderr + result.stdout
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_production_settings_refuse_to_start_without_a_secret_key():
    env = {key: value for key, value in PRODUCTION_ENV.items() if key != "SECRET_KEY"}

    result = subprocess.run(
        [PYTHON, "manage.py", "check"], cwd=REPO, env=clean_env(**env), capture_output=True, text=True
    )

    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_check_deploy_warns_when_sms_would_only_be_logged():
    result = check_deploy(**{**PRODUCTION_ENV, "SMS_BACKEND": "integrations.sms.ConsoleSmsBackend"})

    assert result.returncode != 0
    assert "integrations.W001" in result.stderr + result.stdout
