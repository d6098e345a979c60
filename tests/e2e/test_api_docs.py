"""The API docs render in the browser from locally served assets."""

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_swagger_ui_lists_both_endpoints(live_server, page):
    page.goto(f"{live_server.url}/api/docs/")
    expect(page.get_by_text("/api/so2/v1/enrollments").first).to_be_visible()
    expect(page.get_by_text("/api/bulk_enroll/v1/bulk_enroll/").first).to_be_visible()
