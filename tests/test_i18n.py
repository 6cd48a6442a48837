"""The admin ships in English and Russian; translations are compiled by the build."""

from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation

RU_MO = Path(settings.BASE_DIR) / "locale" / "ru" / "LC_MESSAGES" / "django.mo"


def russian(text: str) -> str:
    with translation.override("ru"):
        translated = translation.gettext(text)
    assert translated != text, f"no Russian translation for {text!r}"
    return translated


def test_russian_catalogue_is_compiled():
    assert RU_MO.exists(), "run `make locale` (make run / make test do it)"


@pytest.mark.smoke
@pytest.mark.django_db
def test_admin_speaks_russian_to_a_russian_browser(admin_client):
    response = admin_client.get("/admin/", HTTP_ACCEPT_LANGUAGE="ru")

    page = response.content.decode()
    assert response.status_code == 200
    assert russian("Loyalty programme administration") in page
    assert russian("Integrations") in page
    assert russian("channels").capitalize() in page


@pytest.mark.django_db
def test_api_errors_are_translated_too(api):
    response = api.post("/api/v1/customers", {"phone": "+79161234567"}, format="json", HTTP_ACCEPT_LANGUAGE="ru")

    assert response.json()["error"]["message"] == russian("This operation needs an Idempotency-Key header.")
