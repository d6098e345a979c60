"""People's names: asked (optionally) at sign-up, edited on the account page, and
one display name (full name, else username) on pages and in emails."""

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse

from enrollments.services import enrollment_batch_update, notifications_send
from tests.factories import UserFactory

User = get_user_model()

pytestmark = pytest.mark.django_db

PASSWORD = "correct-Horse-battery-9"


def sign_up(client, **extra):
    data = {"email": "ada@example.com", "username": "ada", "password1": PASSWORD, "password2": PASSWORD} | extra
    return client.post(reverse("account_signup"), data)


def test_sign_up_asks_for_an_optional_name_after_email_and_username(client):
    form = client.get(reverse("account_signup")).context["form"]
    assert list(form.fields)[:6] == ["email", "username", "first_name", "last_name", "password1", "password2"]
    assert not form.fields["first_name"].required and not form.fields["last_name"].required
    assert form.fields["first_name"].label == "First name (optional)"


def test_sign_up_with_a_name_stores_it(client):
    response = sign_up(client, first_name="  Ada ", last_name="Lovelace")
    assert response.status_code == 302
    user = User.objects.get(username="ada")
    assert (user.first_name, user.last_name, user.display_name) == ("Ada", "Lovelace", "Ada Lovelace")
    assert len(mail.outbox) == 1  # the activation email, as without a name


def test_sign_up_without_a_name_works_and_the_username_stands_in(client):
    assert sign_up(client).status_code == 302
    user = User.objects.get(username="ada")
    assert (user.first_name, user.last_name, user.display_name) == ("", "", "ada")


def test_sign_up_with_an_overlong_name_says_so_and_creates_nobody(client):
    response = sign_up(client, first_name="A" * 151)
    assert response.status_code == 200
    assert "Ensure this value has at most 150 characters" in response.content.decode()
    assert not User.objects.filter(username="ada").exists()


def test_display_name_is_the_full_name_else_the_username():
    assert User(username="kim", first_name="Kim", last_name="").display_name == "Kim"
    assert User(username="kim", first_name="", last_name="Lee").display_name == "Lee"
    assert User(username="kim").display_name == "kim"


# --- the account page -----------------------------------------------------------------


def test_account_page_edits_the_name_with_post_redirect_get(client):
    user = UserFactory(username="kim", first_name="", last_name="")
    client.force_login(user)
    page = client.get(reverse("account_page")).content.decode()
    assert "not given; you appear as kim" in page and 'name="first_name"' in page

    response = client.post(reverse("account_name_update"), {"first_name": "Kim", "last_name": "Lee"})
    assert response.status_code == 302 and response.url == reverse("account_page")
    user.refresh_from_db()
    assert (user.first_name, user.last_name) == ("Kim", "Lee")
    page = client.get(response.url).content.decode()
    assert "Your name was saved. You appear as Kim Lee." in page
    assert 'id="account-name">Kim Lee<' in page and 'value="Kim"' in page
    assert "Welcome, Kim Lee" in client.get(reverse("home")).content.decode()

    client.post(reverse("account_name_update"), {"first_name": "", "last_name": ""})
    user.refresh_from_db()
    assert (user.first_name, user.last_name, user.display_name) == ("", "", "kim")


def test_an_overlong_name_is_refused_and_changes_nothing(client):
    user = UserFactory(username="kim", first_name="Kim", last_name="Lee")
    client.force_login(user)
    response = client.post(reverse("account_name_update"), {"first_name": "K" * 151, "last_name": "Other"})
    assert response.status_code == 400
    assert "Ensure this value has at most 150 characters (it has 151)." in response.content.decode()
    user.refresh_from_db()
    assert (user.first_name, user.last_name) == ("Kim", "Lee")


def test_name_update_needs_login_and_post(client):
    response = client.post(reverse("account_name_update"), {"first_name": "X"})
    assert response.status_code == 302 and response.url.startswith(reverse("account_login"))
    user = UserFactory(first_name="Kim")
    client.force_login(user)
    assert client.get(reverse("account_name_update")).status_code == 405


# --- where the name is used -----------------------------------------------------------


@pytest.mark.parametrize("first, last, greeting", [("Ada", "Lovelace", "Dear Ada Lovelace,"), ("", "", "Dear ada,")])
def test_enrollment_emails_address_people_by_their_display_name(course, course_staff, django_capture_on_commit_callbacks, first, last, greeting):
    UserFactory(username="ada", email="ada@example.com", first_name=first, last_name=last)
    with django_capture_on_commit_callbacks(execute=True):
        enrollment_batch_update(course=course, identifiers="ada", action="enroll", auto_enroll=True, email_students=True, actor=course_staff)
    notifications_send()
    [message] = [m for m in mail.outbox if m.to == ["ada@example.com"]]
    assert message.body.startswith(greeting)
