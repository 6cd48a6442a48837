"""Channel and API key screens in the admin."""

import re

import pytest
from rest_framework.test import APIClient

from integrations.models import ApiKey, Channel, IdempotencyKey
from integrations.services.channels import api_key_issue
from integrations.tests.factories import ChannelFactory


def raw_key_in(response) -> str:
    match = re.search(r"(lcrm_[A-Za-z0-9_\-]{20,})", response.content.decode())
    assert match, "the issued key is not on the page"
    return match[1]


@pytest.mark.smoke
@pytest.mark.django_db
def test_issuing_a_key_shows_it_once_and_it_authenticates(admin_client):
    channel = ChannelFactory(scopes=["customers:read"])

    shown = admin_client.post("/admin/integrations/apikey/add/", {"channel": channel.pk, "name": "till 3"}, follow=True)
    raw_key = raw_key_in(shown)
    shown_again = admin_client.get(shown.redirect_chain[-1][0])

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    assert api.get("/api/v1/customers").status_code == 200
    assert raw_key not in shown_again.content.decode()
    stored = ApiKey.objects.get()
    assert (stored.channel, stored.name, stored.prefix) == (channel, "till 3", raw_key[:12])
    assert raw_key not in {stored.key_hash, stored.prefix}


@pytest.mark.django_db
def test_revoke_action_cuts_the_key_off(admin_client, admin_user):
    issued = api_key_issue(channel=ChannelFactory(scopes=["customers:read"]), name="k")

    admin_client.post(
        "/admin/integrations/apikey/",
        {"action": "revoke_keys", "_selected_action": [issued.api_key.pk]},
        follow=True,
    )

    issued.api_key.refresh_from_db()
    assert issued.api_key.revoked_by == admin_user
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.raw_key}")
    assert api.get("/api/v1/customers").json()["error"]["code"] == "api_key_revoked"


@pytest.mark.django_db
def test_keys_cannot_be_deleted_only_revoked(admin_client):
    issued = api_key_issue(channel=ChannelFactory(), name="k")

    response = admin_client.post(f"/admin/integrations/apikey/{issued.api_key.pk}/delete/", {"post": "yes"})

    assert response.status_code == 403
    assert ApiKey.objects.filter(pk=issued.api_key.pk).exists()


@pytest.mark.django_db
def test_channel_is_created_with_scopes_from_checkboxes(admin_client):
    response = admin_client.post(
        "/admin/integrations/channel/add/",
        {
            "code": "erp",
            "name": "ERP",
            "kind": "erp",
            "is_active": "on",
            "scopes": ["orders:write", "customers:read"],
            "rate_limit": "600/min",
            "api_keys-TOTAL_FORMS": "0",
            "api_keys-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 302
    assert Channel.objects.get(code="erp").scopes == ["customers:read", "orders:write"]


@pytest.mark.django_db
def test_channel_form_explains_a_bad_rate_limit(admin_client):
    response = admin_client.post(
        "/admin/integrations/channel/add/",
        {
            "code": "x",
            "name": "X",
            "kind": "site",
            "rate_limit": "fast",
            "api_keys-TOTAL_FORMS": "0",
            "api_keys-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 200
    assert "Use the form 100/min" in response.content.decode()
    assert not Channel.objects.exists()


@pytest.mark.django_db
def test_channel_list_query_count_does_not_grow_with_channels(admin_client, django_assert_max_num_queries):
    for channel in ChannelFactory.create_batch(20):
        api_key_issue(channel=channel, name="k")

    with django_assert_max_num_queries(8):
        response = admin_client.get("/admin/integrations/channel/")

    assert response.status_code == 200


@pytest.mark.django_db
def test_stored_idempotency_answers_are_visible_read_only(admin_client, api):
    api.post("/api/v1/customers", {"phone": "+79161234567"}, format="json", HTTP_IDEMPOTENCY_KEY="erp-42")

    listing = admin_client.get("/admin/integrations/idempotencykey/", {"q": "erp-42"})
    record = admin_client.get(f"/admin/integrations/idempotencykey/{IdempotencyKey.objects.get().pk}/change/")

    assert "erp-42" in listing.content.decode()
    assert record.status_code == 200
    assert 'name="_save"' not in record.content.decode()
