"""The browser harness itself: a staff user logs in to the admin in Chromium."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from tests.browser.conftest import admin_login


@pytest.mark.django_db(transaction=True)
def test_a_manager_logs_in_and_sees_the_admin_index(page) -> None:
    get_user_model().objects.create_superuser("manager", "manager@example.com", "s3cret-pass")

    admin_login(page, "manager", "s3cret-pass")

    assert page.locator("#site-name").is_visible()
    assert page.locator("#content-main a[href='/admin/customers/customer/']").first.is_visible()
