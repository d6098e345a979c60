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
    # The host appears only inside the activation link itself.
    lines_with_host = [line for line in activation.body.splitlines() if "127.0.0.1:8101" in line]
    assert len(lines_with_host) == 1 and lines_with_host[0].startswith("http://127.0.0.1:8101/accounts/confirm-email/")


def test_password_reset_email_greets_by_full_name(client):
    UserFactory(username="learner6", email="learner6@example.com", first_name="Learner", last_name="6")
    client.post(reverse("account_reset_password"), {"email": "learner6@example.com"})
    [message] = mail.outbox
    assert message.subject.startswith("[Acme Learning] ")
    assert message.body.startswith("Hello Learner 6,\n")
    assert "Thank you for using Acme Learning!" in message.body and "Hello from" not in message.body
