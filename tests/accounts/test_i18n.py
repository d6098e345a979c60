"""Languages and time zones: the person's language and zone rule the pages, the
navigation bar's picker and the account page change them, bad input changes nothing."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone, translation
from rest_framework.authtoken.models import Token

from enrollment_site.lib.errors import NotFound

from ..factories import CourseFactory, CourseRoleFactory, UserFactory
from ..i18n.catalogs import ensure_compiled

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True, scope="module")
def _catalogs():
    ensure_compiled()


def _page(client, url="/", **headers):
    response = client.get(url, headers=headers)
    assert response.status_code == 200
    return response.content.decode()


def test_a_request_without_a_language_is_english_left_to_right(client):
    html = _page(client)
    assert '<html lang="en" dir="ltr">' in html
    assert "vendor/bootstrap/bootstrap.min.css" in html and "bootstrap.rtl" not in html
    assert "Log in" in html


def test_a_french_user_sees_home_and_the_account_page_in_french(client):
    client.force_login(UserFactory(language="fr"))
    home = _page(client)
    assert '<html lang="fr" dir="ltr">' in home
    assert "Tableau de bord" in home and "Cours en cours" in home and "Se déconnecter" in home
    account = _page(client, reverse("account_page"))
    assert "Votre compte" in account and "Langue et fuseau horaire" in account and "Fuseau horaire" in account


def test_the_users_language_wins_over_the_browsers(client):
    client.force_login(UserFactory(language="fr"))
    assert "Tableau de bord" in _page(client, accept_language="de")


def test_a_language_the_site_does_not_ship_falls_back_to_the_browsers(client):
    # language is also an attribute rules match on: any short code may be stored.
    client.force_login(UserFactory(language="pt"))
    assert "Zum Inhalt springen" in _page(client, accept_language="de")
    client.force_login(UserFactory(language="nl-BE"))  # a regional variant gets its language
    assert "Naar de inhoud" in _page(client)


def test_an_anonymous_visitor_gets_the_browsers_language(client):
    html = _page(client, accept_language="de")
    assert '<html lang="de" dir="ltr">' in html and "Anmelden" in html and "Registrieren" in html


def test_an_arabic_user_gets_right_to_left_and_bootstraps_rtl_stylesheet(client):
    client.force_login(UserFactory(language="ar"))
    html = _page(client)
    assert '<html lang="ar" dir="rtl">' in html
    assert "vendor/bootstrap/bootstrap.rtl.min.css" in html and "bootstrap.min.css" not in html
    assert "لوحة التحكم" in html


def test_the_picker_stores_the_language_on_the_user_and_the_next_page_is_in_it(client):
    user = UserFactory(language="")
    client.force_login(user)
    response = client.post(reverse("set_language"), {"language": "nl", "next": reverse("account_page")})
    assert response.status_code == 302 and response["Location"] == reverse("account_page")
    user.refresh_from_db()
    assert user.language == "nl"
    html = _page(client, reverse("account_page"))
    assert "Uw account" in html and "De site is nu in het Nederlands." in html


def test_the_picker_sets_the_language_cookie_for_an_anonymous_visitor(client):
    response = client.post(reverse("set_language"), {"language": "es", "next": "/"})
    assert response.status_code == 302 and response.cookies["django_language"].value == "es"
    assert "Iniciar sesión" in _page(client)


@pytest.mark.parametrize("posted, message", [
    ({"language": "xx", "next": "/"}, "Die Sprache wurde nicht geändert: Diese Website bietet diese Sprache nicht an."),
    ({"language": "fr", "next": "https://evil.example/"}, "Die Sprache wurde nicht geändert: Die Seite, zu der zurückgekehrt werden soll"),
    ({"language": "fr", "next": "//evil.example/"}, "Die Sprache wurde nicht geändert: Die Seite, zu der zurückgekehrt werden soll"),
])
def test_the_picker_refuses_bad_input_and_changes_nothing(client, posted, message):
    user = UserFactory(language="de")
    client.force_login(user)
    response = client.post(reverse("set_language"), posted)
    assert response.status_code == 302 and response["Location"] == "/"
    assert "django_language" not in response.cookies
    user.refresh_from_db()
    assert user.language == "de"
    # The message says why, in the person's (unchanged) language.
    assert message in _page(client)


def test_the_picker_is_a_post_form_with_csrf(client):
    html = _page(client)
    assert f'action="{reverse("set_language")}"' in html and 'name="csrfmiddlewaretoken"' in html
    assert '<label class="visually-hidden" for="nav-language">Language</label>' in html
    assert client.get(reverse("set_language")).status_code == 405


def test_the_account_page_saves_language_and_time_zone(client):
    user = UserFactory()
    client.force_login(user)
    response = client.post(reverse("account_preferences_update"), {"language": "fr", "time_zone": "Europe/Amsterdam"})
    assert response.status_code == 302 and response["Location"] == reverse("account_page")
    user.refresh_from_db()
    assert (user.language, user.time_zone) == ("fr", "Europe/Amsterdam")
    html = _page(client, reverse("account_page"))
    assert "Votre langue et votre fuseau horaire ont été enregistrés." in html
    assert '<option value="Europe/Amsterdam" selected>' in html


@pytest.mark.parametrize("posted, error", [
    ({"language": "en", "time_zone": "Mars/Olympus_Mons"}, "That is not a time zone this site knows"),
    ({"language": "xx", "time_zone": ""}, "This site does not offer that language."),
])
def test_the_account_page_refuses_an_unknown_zone_or_language_and_changes_nothing(client, posted, error):
    user = UserFactory(language="", time_zone="Asia/Tokyo")
    client.force_login(user)
    response = client.post(reverse("account_preferences_update"), posted)
    assert response.status_code == 400
    assert error in response.content.decode()
    user.refresh_from_db()
    assert (user.language, user.time_zone) == ("", "Asia/Tokyo")


def test_a_time_is_shown_in_the_users_zone_with_the_zone_named(client):
    user = UserFactory(time_zone="Asia/Tokyo")
    token = Token.objects.create(user=user)
    Token.objects.filter(pk=token.pk).update(created=dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC))
    client.force_login(user)
    html = _page(client, reverse("account_page"))
    assert "Created 2026-01-15 21:00 JST." in html
    assert "Times in Asia/Tokyo" in html
    # The zone is the person's only: the next request (another visitor, same thread) is in the site's.
    client.logout()
    assert "Times in UTC" in _page(client)
    assert timezone.get_current_timezone_name() == "UTC"


def test_a_user_without_a_zone_sees_the_sites(client, settings):
    user = UserFactory(time_zone="")
    Token.objects.filter(pk=Token.objects.create(user=user).pk).update(created=dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC))
    client.force_login(user)
    html = _page(client, reverse("account_page"))
    assert "Created 2026-01-15 12:00 UTC." in html and "Times in UTC" in html


def test_the_time_zone_list_is_grouped_by_region():
    from accounts.time_zones import time_zone_choices

    groups = dict(time_zone_choices())
    assert ("Europe/Amsterdam", "Europe/Amsterdam") in groups["Europe"]
    assert ("America/Argentina/Buenos_Aires", "America/Argentina/Buenos Aires") in groups["America"]
    assert groups["UTC"] == [("UTC", "UTC")] and list(groups)[-1] == "UTC"


def test_the_instructor_dashboard_and_403_are_in_french(client):
    course = CourseFactory()
    staff = UserFactory(language="fr")
    CourseRoleFactory(course=course, user=staff, role="staff")
    client.force_login(staff)
    assert "Tableau de bord du formateur" in _page(client, reverse("instructor_info", args=[course.key]))
    client.force_login(UserFactory(language="fr"))
    response = client.get(reverse("instructor_info", args=[course.key]))
    assert response.status_code == 403
    assert "Vous ne faites pas partie de l&#x27;équipe pédagogique de ce cours." in response.content.decode()


def test_app_errors_read_their_message_in_the_active_language():
    with translation.override("fr"):
        assert NotFound().message == "Introuvable."
    with translation.override("ar"):
        assert NotFound().message == "غير موجود."
    assert NotFound().message == "Not found."


def test_the_model_refuses_an_unknown_zone_in_any_form_as_django_admins():
    from django.core.exceptions import ValidationError

    user = UserFactory.build(time_zone="Mars/Olympus_Mons")
    with pytest.raises(ValidationError) as refused:
        user.full_clean(exclude=["password"])
    assert refused.value.message_dict["time_zone"] == [
        "“Mars/Olympus_Mons” is not a time zone this site knows. Choose one from the list, such as Europe/Amsterdam."
    ]


def test_the_picker_returns_to_the_page_it_is_on_and_home_after_a_post(client):
    client.force_login(UserFactory())
    # The path alone is in the page (a query string is never echoed into it)...
    assert '<input type="hidden" name="next" value="/courses/">' in _page(client, "/courses/?q=<script>")
    # ...and the Referer of that page brings its query string back; another page's Referer does not.
    url = reverse("set_language")
    back = client.post(url, {"language": "fr", "next": "/courses/"}, headers={"referer": "http://testserver/courses/?q=x"})
    assert back["Location"] == "http://testserver/courses/?q=x"
    other = client.post(url, {"language": "fr", "next": "/courses/"}, headers={"referer": "http://testserver/?q=x"})
    foreign = client.post(url, {"language": "fr", "next": "/courses/"}, headers={"referer": "https://evil.example/courses/?q=x"})
    assert other["Location"] == foreign["Location"] == "/courses/"
    refused = client.post(reverse("account_preferences_update"), {"language": "xx", "time_zone": ""})
    assert refused.status_code == 400
    # The page answering a POST has an address that takes POSTs only: the picker returns home from it.
    assert '<input type="hidden" name="next" value="/">' in refused.content.decode()
