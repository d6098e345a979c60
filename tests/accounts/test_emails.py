"""allauth's emails (activation, password reset) speak as SITE_NAME, not as the
request's host and port."""

import pytest
from django.core import mail
from django.urls import reverse

from ..factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct-Horse-battery-9"


@pytest.fixture(autouse=True)
def _site(settings):
    settings.SITE_NAME = "Acme Learning"
    settings.SITE_URL = "https://learn.example.org"


def test_activation_email_says_the_site_name_not_the_host(client):
    client.post(
        reverse("account_signup"),
        {"email": "newcomer@example.com", "username": "newcomer", "password1": PASSWORD, "password2": PASSWORD},
        HTTP_HOST="127.0.0.1:8101",
    )
    [activation] = mail.outbox
    assert activation.subject == "[Acme Learning] Please Confirm Your Email Address"
    assert activation.body.startswith("Hello newcomer,\n")
    assert "someone signed up for Acme Learning as newcomer with this email address" in activation.body
    assert "Thank you for using Acme Learning!" in activation.body
    assert "Hello from" not in activation.body
    # The link is on SITE_URL, whatever Host the request came with.
    assert "127.0.0.1:8101" not in activation.body
    links = [line for line in activation.body.splitlines() if "/accounts/confirm-email/" in line]
    assert len(links) == 1 and links[0].startswith("https://learn.example.org/accounts/confirm-email/")


def test_password_reset_email_greets_by_full_name(client, settings):
    settings.ALLOWED_HOSTS = ["*"]  # a lax deployment: any Host reaches the view
    UserFactory(username="learner6", email="learner6@example.com", first_name="Learner", last_name="6")
    client.post(reverse("account_reset_password"), {"email": "learner6@example.com"}, HTTP_HOST="evil.example.com")
    [message] = mail.outbox
    # A forged Host cannot redirect the reset key: the link is on SITE_URL.
    assert "evil.example.com" not in message.body
    assert "https://learn.example.org/accounts/password/reset/key/" in message.body
    assert message.subject.startswith("[Acme Learning] ")
    assert message.body.startswith("Hello Learner 6,\n")
    assert "Thank you for using Acme Learning!" in message.body and "Hello from" not in message.body
