"""Accounts: sign-up with email activation, login by username or email, logout,
password reset, case-insensitive unique emails and API tokens."""

import io
import re
import time

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.test import APIRequestFactory

from accounts.authentication import BearerTokenAuthentication

from ..factories import UserFactory

User = get_user_model()

pytestmark = pytest.mark.django_db

PASSWORD = "correct-Horse-battery-9"
URL_RE = re.compile(r"https?://testserver(/\S+)")


@pytest.fixture(autouse=True)
def _site_url(settings):
    # Emails link to SITE_URL; here that is the test client's host.
    settings.SITE_URL = "http://testserver"


def _links(message) -> list[str]:
    """Paths of the testserver links in an email body."""
    return URL_RE.findall(message.body)


def _link(message, fragment: str) -> str:
    links = [link for link in _links(message) if fragment in link]
    assert links, f"no link containing {fragment!r} in:\n{message.body}"
    return links[0]


def _logged_in_user_id(client):
    return client.session.get("_auth_user_id")


def _login(client, login: str, password: str = PASSWORD):
    client.logout()
    return client.post(reverse("account_login"), {"login": login, "password": password})


def _sign_up(client, *, email="Alice.Smith@Example.com", username="alice"):
    return client.post(
        reverse("account_signup"),
        {"email": email, "username": username, "password1": PASSWORD, "password2": PASSWORD},
    )


def _confirm(client, message):
    confirm_path = _link(message, "/accounts/confirm-email/")
    # ACCOUNT_CONFIRM_EMAIL_ON_GET is off: GET shows a page with a button, POST confirms.
    page = client.get(confirm_path)
    assert page.status_code == 200
    assert b'method="post"' in page.content.lower() or b"method='post'" in page.content.lower()
    return client.post(confirm_path)


# --- sign-up and activation ----------------------------------------------------


def test_signup_sends_activation_email_and_login_waits_for_confirmation(client):
    response = _sign_up(client)

    assert response.status_code == 302
    user = User.objects.get(username="alice")
    assert user.email.lower() == "alice.smith@example.com"
    assert _logged_in_user_id(client) is None, "a new account must not be logged in before activation"
    assert len(mail.outbox) == 1
    activation = mail.outbox[0]
    assert [a.lower() for a in activation.to] == ["alice.smith@example.com"]
    assert activation.subject.startswith("[Enrollment manager] ")
    assert "/accounts/confirm-email/" in activation.body

    # Correct credentials, but the address is not confirmed yet: no session.
    response = _login(client, "alice")
    assert _logged_in_user_id(client) is None
    assert response.status_code == 302
    assert response.url == reverse("account_email_verification_sent")

    # Only the link in the email activates the account.
    response = _confirm(client, mail.outbox[0])
    assert response.status_code == 302
    assert user.emailaddress_set.get().verified

    for login in ("alice", "alice.smith@example.com", "ALICE.SMITH@EXAMPLE.COM", "Alice.Smith@Example.com"):
        response = _login(client, login)
        assert response.status_code == 302, (login, response.content.decode()[:500])
        assert _logged_in_user_id(client) == str(user.pk), login
        assert client.get(reverse("account_page")).status_code == 200


def test_wrong_password_does_not_log_in(client, learner):
    response = _login(client, "learner", "not-the-password")
    assert response.status_code == 200
    assert _logged_in_user_id(client) is None
    assert b"not correct" in response.content.lower() or b"incorrect" in response.content.lower()


def test_a_bad_confirmation_key_does_not_activate(client):
    _sign_up(client)
    client.post(reverse("account_confirm_email", args=["not-a-real-key"]))
    assert not User.objects.get(username="alice").emailaddress_set.get().verified
    _login(client, "alice")
    assert _logged_in_user_id(client) is None


# --- email uniqueness ------------------------------------------------------------


def test_email_is_unique_whatever_its_case_in_the_database():
    UserFactory(username="first", email="Same.Person@example.com")
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create_user(username="second", email="same.person@EXAMPLE.COM", password=PASSWORD)
    assert User.objects.filter(email__iexact="same.person@example.com").count() == 1


def test_signup_with_an_existing_address_in_another_case_creates_no_account(client):
    existing = UserFactory(username="first", email="taken@example.com")

    response = _sign_up(client, email="TAKEN@Example.COM", username="second")

    # Enumeration prevention: the answer looks like a successful sign-up ...
    assert response.status_code == 302
    assert response.url == reverse("account_email_verification_sent")
    # ... but no second account exists and the owner of the address is told instead.
    assert not User.objects.filter(username="second").exists()
    assert list(User.objects.filter(email__iexact="taken@example.com")) == [existing]
    assert len(mail.outbox) == 1
    assert "already exists" in mail.outbox[0].subject.lower()
    assert "/accounts/confirm-email/" not in mail.outbox[0].body


# --- logout and password reset ---------------------------------------------------------


def test_logout_by_post(client, learner):
    client.force_login(learner)
    assert client.get(reverse("account_page")).status_code == 200

    response = client.post(reverse("account_logout"))

    assert response.status_code == 302
    assert _logged_in_user_id(client) is None
    response = client.get(reverse("account_page"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


def test_password_reset_by_email_link(client):
    user = UserFactory(username="forgetful", email="forgetful@example.com")

    response = client.post(reverse("account_reset_password"), {"email": "Forgetful@Example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    reset_path = _link(mail.outbox[0], "/accounts/password/reset/key/")

    # allauth moves the key out of the URL into the session, then shows the form.
    response = client.get(reset_path, follow=True)
    assert response.status_code == 200
    assert b"password1" in response.content
    form_path = response.redirect_chain[-1][0]
    new_password = "brand-New-secret-42"
    response = client.post(form_path, {"password1": new_password, "password2": new_password})
    assert response.status_code == 302, response.content.decode()[:1000]

    user.refresh_from_db()
    assert user.check_password(new_password)
    _login(client, "forgetful", "pass-word-123")
    assert _logged_in_user_id(client) is None, "the old password must no longer work"
    _login(client, "forgetful", new_password)
    assert _logged_in_user_id(client) == str(user.pk)


def test_password_reset_link_works_once(client):
    UserFactory(username="forgetful", email="forgetful@example.com")
    client.post(reverse("account_reset_password"), {"email": "forgetful@example.com"})
    reset_path = _link(mail.outbox[0], "/accounts/password/reset/key/")
    response = client.get(reset_path, follow=True)
    form_path = response.redirect_chain[-1][0]
    client.post(form_path, {"password1": "first-New-secret-1", "password2": "first-New-secret-1"})

    client.logout()
    response = client.get(reset_path, follow=True)
    form_path = response.redirect_chain[-1][0] if response.redirect_chain else reset_path
    client.post(form_path, {"password1": "second-New-secret-2", "password2": "second-New-secret-2"})
    assert User.objects.get(username="forgetful").check_password("first-New-secret-1")


# --- API tokens --------------------------------------------------------------------


def _bearer(key: str, keyword: str = "Bearer"):
    request = APIRequestFactory().get("/api/anything", HTTP_AUTHORIZATION=f"{keyword} {key}")
    return BearerTokenAuthentication().authenticate(request)


def test_account_page_requires_login(client):
    response = client.get(reverse("account_page"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


def test_account_page_shows_the_token_and_a_new_one_replaces_it(client, learner):
    client.force_login(learner)
    response = client.get(reverse("account_page"))
    assert response.status_code == 200
    assert b"no API token yet" in response.content

    response = client.post(reverse("api_token_create"), follow=True)
    first = Token.objects.get(user=learner)
    page = response.content.decode()
    assert first.key in page
    assert "Your API token was created." in page
    assert "previous one" not in page, "there was no previous token to stop working"
    assert _bearer(first.key)[0] == learner

    response = client.post(reverse("api_token_create"), follow=True)
    second = Token.objects.get(user=learner)
    page = response.content.decode()
    assert second.key != first.key
    assert second.key in page
    assert first.key not in page
    assert "previous one no longer works" in page
    assert _bearer(second.key)[0] == learner
    with pytest.raises(AuthenticationFailed):
        _bearer(first.key)


def test_token_creation_needs_post_and_login(client, learner):
    assert client.post(reverse("api_token_create")).status_code == 302  # to login
    assert not Token.objects.exists()
    client.force_login(learner)
    assert client.get(reverse("api_token_create")).status_code == 405
    assert not Token.objects.exists()


def test_drf_create_token_command_issues_a_working_token(learner):
    out = io.StringIO()
    call_command("drf_create_token", "learner", stdout=out)
    token = Token.objects.get(user=learner)
    assert token.key in out.getvalue()
    user, auth = _bearer(token.key)
    assert user == learner
    assert auth == token


def test_bearer_authentication_accepts_only_bearer_with_a_valid_key(learner):
    token = Token.objects.create(user=learner)

    assert _bearer(token.key) == (learner, token)
    with pytest.raises(AuthenticationFailed):
        _bearer(token.key[:-1] + ("0" if token.key[-1] != "0" else "1"))
    # The DRF default keyword is not accepted: the header is ignored (anonymous).
    assert _bearer(token.key, keyword="Token") is None
    assert BearerTokenAuthentication().authenticate(APIRequestFactory().get("/api/anything")) is None


def test_bearer_token_of_an_inactive_user_is_refused(learner):
    token = Token.objects.create(user=learner)
    learner.is_active = False
    learner.save()
    with pytest.raises(AuthenticationFailed):
        _bearer(token.key)


# --- failed-login lockout --------------------------------------------------------


def _failures(client, logins):
    for login in logins:
        response = _login(client, login, "not-the-password")
        assert response.status_code == 200, login
        assert _logged_in_user_id(client) is None


SPELLINGS = ["learner", "LEARNER", "learner@example.com", "Learner@Example.com", "learner"]


def test_failed_logins_count_per_account_whatever_was_typed(client, learner):
    learner.set_password(PASSWORD)
    learner.save()
    _failures(client, SPELLINGS)

    response = _login(client, "Learner")
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 300
    assert b"Too many failed login attempts" in response.content
    assert _logged_in_user_id(client) is None


def test_the_lockout_ends_with_its_window(client, learner, monkeypatch):
    learner.set_password(PASSWORD)
    learner.save()
    _failures(client, SPELLINGS)
    assert _login(client, "learner").status_code == 429

    later = time.time() + 301
    monkeypatch.setattr(time, "time", lambda: later)
    response = _login(client, "learner@example.com")
    assert response.status_code == 302
    assert _logged_in_user_id(client) == str(learner.pk)


def test_a_locked_account_does_not_lock_another(client, learner):
    other = UserFactory(username="other", email="other@example.com")
    other.set_password(PASSWORD)
    other.save()
    _failures(client, SPELLINGS)
    assert _login(client, "learner", PASSWORD).status_code == 429

    response = _login(client, "OTHER")
    assert response.status_code == 302
    assert _logged_in_user_id(client) == str(other.pk)


def test_a_success_neither_counts_nor_wipes_the_failures(client, learner):
    learner.set_password(PASSWORD)
    learner.save()
    _failures(client, SPELLINGS[:4])
    for _ in range(3):
        assert _login(client, "learner").status_code == 302
        client.logout()
    _failures(client, ["LEARNER"])  # the fifth
    assert _login(client, "learner").status_code == 429


def test_unknown_logins_are_locked_too_so_a_lockout_reveals_no_account(client):
    _failures(client, ["nobody"] * 5)
    assert _login(client, "NOBODY").status_code == 429


def test_the_admin_login_is_locked_the_same_way(client):
    admin = UserFactory(username="boss", email="boss@example.com", is_staff=True, is_superuser=True)
    admin.set_password(PASSWORD)
    admin.save()
    response = client.get("/admin/login/")
    assert response.status_code == 302
    login_url = response.url
    assert login_url.startswith(reverse("account_login"))
    for login in ["boss", "BOSS", "boss@example.com", "Boss@Example.com", "boss"]:
        assert client.post(login_url, {"login": login, "password": "wrong"}).status_code == 200

    response = client.post(login_url, {"login": "boss", "password": PASSWORD})
    assert response.status_code == 429
    assert "Retry-After" in response
    assert client.get("/admin/").status_code == 302  # still not logged in


def test_the_per_address_limit_answers_429_too(client, settings):
    settings.ACCOUNT_RATE_LIMITS = {"login_failed": "3/m/ip"}
    _failures(client, ["a", "b", "c"])
    response = _login(client, "d")
    assert response.status_code == 429
    assert response["Retry-After"] == "60"


def test_a_password_reset_ends_the_lockout(client, learner):
    _failures(client, SPELLINGS)
    assert _login(client, "learner", PASSWORD).status_code == 429

    client.post(reverse("account_reset_password"), {"email": "learner@example.com"})
    response = client.get(_link(mail.outbox[-1], "/accounts/password/reset/key/"), follow=True)
    new_password = "brand-New-secret-42"
    response = client.post(response.redirect_chain[-1][0], {"password1": new_password, "password2": new_password})
    assert response.status_code == 302
    client.logout()

    response = _login(client, "LEARNER", new_password)
    assert response.status_code == 302
    assert _logged_in_user_id(client) == str(learner.pk)
