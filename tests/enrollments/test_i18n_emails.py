"""Emails in the recipient's language: an account's own language (else the
site's), the course's language for an address with no account, dates in the
recipient's time zone and locale; and the enrollments texts a French person
reads (the settings' new field, the learners export's header, an API error)."""

import csv
import datetime
import io

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from courses.models import CourseRole
from enrollments.models import Notification
from enrollments.notifications import PeriodMessages, recipient_locales
from enrollments.periods import period_request
from enrollments.services import enrollment_batch_update, enrollments_remind
from tests.factories import CourseFactory, CourseRoleFactory, EnrollmentFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _site(settings):
    settings.SITE_URL = "https://learn.example.org"
    settings.SITE_NAME = "Acme Learning"
    settings.LANGUAGE_CODE = "en"
    settings.TIME_ZONE = "UTC"


def send(course, identifiers, *, action="enroll", capture, **period):
    mail.outbox.clear()
    with capture(execute=True):
        enrollment_batch_update(
            course=course, identifiers=identifiers, action=action, auto_enroll=True, email_students=True, actor=None, reason="",
            period=period_request(**period) if period else None,
        )
    return {m.to[0]: m for m in mail.outbox}


def html_of(message) -> str:
    [(html, _mimetype)] = message.alternatives
    return html


def test_a_french_learner_gets_the_enrollment_and_unenroll_emails_in_french(django_capture_on_commit_callbacks):
    course = CourseFactory(display_name="Hygiène", language="de")  # the course's language is not theirs
    UserFactory(username="marie", email="marie@example.com", first_name="Marie", last_name="Curie", language="fr")
    enrolled = send(course, "marie", capture=django_capture_on_commit_callbacks, access_until="2026-12-31")["marie@example.com"]
    assert enrolled.subject == "Vous avez été inscrit au cours Hygiène"
    assert enrolled.body.startswith("Bonjour Marie Curie,\n")
    assert "Un membre de l'équipe pédagogique vous a inscrit au cours Hygiène" in enrolled.body
    # The period in French words and month, in the site's zone (Marie has none of her own).
    assert "Votre accès : jusqu'au 31 Déc 2026 23:59 (UTC)." in enrolled.body
    html = html_of(enrolled)
    assert '<html lang="fr" dir="ltr">' in html and "Ouvrir le cours" in html
    unenrolled = send(course, "marie", action="unenroll", capture=django_capture_on_commit_callbacks)["marie@example.com"]
    assert unenrolled.subject == "Vous avez été désinscrit du cours Hygiène"
    assert "vous a désinscrit du cours Hygiène" in unenrolled.body and "Cet e-mail a été envoyé à marie@example.com" in unenrolled.body


def test_an_invitation_to_an_address_without_an_account_is_in_the_courses_language(django_capture_on_commit_callbacks):
    course = CourseFactory(display_name="Statistik", language="de")
    invited = send(course, "neu@example.com", capture=django_capture_on_commit_callbacks)["neu@example.com"]
    assert invited.subject == "Sie wurden eingeladen, sich für Statistik zu registrieren"
    assert invited.body.startswith("Guten Tag,\n")
    assert "Sobald Sie Ihr Konto aktiviert haben, werden Sie automatisch in den Kurs eingeschrieben" in invited.body
    assert "Konto erstellen" in html_of(invited)


def test_a_course_without_a_language_invites_in_the_sites(django_capture_on_commit_callbacks, settings):
    settings.LANGUAGE_CODE = "nl"
    invited = send(CourseFactory(display_name="Biologie"), "nieuw@example.com", capture=django_capture_on_commit_callbacks)["nieuw@example.com"]
    assert invited.subject == "U bent uitgenodigd om u te registreren voor Biologie"


def test_an_account_without_a_language_gets_the_sites_not_the_courses(django_capture_on_commit_callbacks):
    # The course's language is for addresses with no account only: someone
    # with an account who chose no language reads the site's (English here).
    course = CourseFactory(display_name="Chemistry", language="ar")
    UserFactory(username="sam", email="sam@example.com", language="")
    message = send(course, "sam", capture=django_capture_on_commit_callbacks)["sam@example.com"]
    assert message.subject == "You have been enrolled in Chemistry"
    assert '<html lang="en" dir="ltr">' in html_of(message)


def test_an_arabic_learner_gets_arabic_right_to_left(django_capture_on_commit_callbacks):
    course = CourseFactory(display_name="Chemistry")
    UserFactory(username="layla", email="layla@example.com", first_name="Layla", last_name="", language="ar")
    message = send(course, "layla", capture=django_capture_on_commit_callbacks)["layla@example.com"]
    assert message.subject == "تم تسجيلك في Chemistry"
    assert message.body.startswith("عزيزي/عزيزتي Layla،\n")
    assert '<html lang="ar" dir="rtl">' in html_of(message)


def test_an_unshipped_or_regional_language_falls_back_sensibly():
    course = CourseFactory(language="de")
    UserFactory(email="ca@example.com", language="fr-ca")
    UserFactory(email="pt@example.com", language="pt")
    notes = [Notification(pk=i, recipient_key=key, course=course) for i, key in enumerate(["ca@example.com", "pt@example.com", "x@example.com"])]
    locales = recipient_locales(notes)
    assert [locales[i].language for i in range(3)] == ["fr", "en", "de"]


def test_messages_of_one_batch_in_several_languages_are_each_right(django_capture_on_commit_callbacks):
    # The rendering cache is per language: a French body is never served to a Dutch reader.
    course = CourseFactory(display_name="Logic")
    for name, language in [("fr1", "fr"), ("nl1", "nl"), ("fr2", "fr"), ("en1", "")]:
        UserFactory(username=name, email=f"{name}@example.com", language=language)
    sent = send(course, "fr1, nl1, fr2, en1", capture=django_capture_on_commit_callbacks)
    assert {to: m.subject for to, m in sent.items()} == {
        "fr1@example.com": "Vous avez été inscrit au cours Logic", "fr2@example.com": "Vous avez été inscrit au cours Logic",
        "nl1@example.com": "U bent ingeschreven voor Logic", "en1@example.com": "You have been enrolled in Logic",
    }
    assert "cursusteam" in sent["nl1@example.com"].body and "équipe pédagogique" in sent["fr2@example.com"].body


def test_the_end_date_is_in_the_recipients_time_zone_and_locale():
    course = CourseFactory(display_name="Astronomy")
    user = UserFactory(email="kiri@example.com", language="fr")
    # Read with getattr: set on the object it works with or without accounts' time zone field.
    user.time_zone = "Pacific/Auckland"
    until = timezone.make_aware(datetime.datetime(2026, 12, 31, 20, 0), datetime.UTC)  # 1 January 2027, 9:00 in Auckland
    row = PeriodMessages().row(Notification.Kind.EXPIRING, course=course, user=user, until=until, operation_id=None, now=until)
    assert row["subject"] == "Votre accès au cours Astronomy prend bientôt fin"
    assert "prend fin le 1 janvier 2027." in row["body"]
    user.time_zone = ""
    row = PeriodMessages().row(Notification.Kind.EXPIRING, course=course, user=user, until=until, operation_id=None, now=until)
    assert "prend fin le 31 décembre 2026." in row["body"]


@pytest.mark.parametrize(("learners", "line"), [
    (1, "prend bientôt fin pour 1 apprenant :"),
    (3, "prend bientôt fin pour 3 apprenants :"),
])
def test_the_team_summary_says_its_count_in_the_right_plural(learners, line):
    now = timezone.make_aware(datetime.datetime(2026, 6, 1, 9, 0))
    course = CourseFactory(display_name="Hygiene", expiry_reminder_days=3, expiry_reminder_team=True)
    admin = CourseRoleFactory(course=course, role=CourseRole.Role.ADMIN, user=UserFactory(language="fr")).user
    for i in range(learners):
        EnrollmentFactory(course=course, access_until=now + datetime.timedelta(days=i + 1))
    enrollments_remind(now=now)
    summary = Notification.objects.get(kind=Notification.Kind.EXPIRING_TEAM, recipient=admin.email)
    assert line in summary.body
    assert summary.subject == "L'accès au cours Hygiene prend bientôt fin pour certains apprenants"
    assert "jusqu'au 2 juin 2026" in summary.body


def test_the_course_language_is_a_setting_saved_and_recorded(client_for, course, course_admin):
    from tests.enrollments.test_course_settings import form_data, settings_url

    page = client_for(course_admin).get(settings_url(course))
    assert 'name="language"' in page.content.decode()
    response = client_for(course_admin).post(settings_url(course), form_data(course, language="de"))
    assert response.status_code == 302
    course.refresh_from_db()
    assert course.language == "de"
    assert course.settings_changes.get().changes["language"] == ["", "de"]
    refused = client_for(course_admin).post(settings_url(course), form_data(course, language="xx"))
    assert refused.status_code == 400  # the form again, with its error
    course.refresh_from_db()
    assert course.language == "de"


def test_the_learners_export_header_is_in_the_language_of_the_person_exporting(client_for, course, course_admin):
    EnrollmentFactory(course=course)
    url = reverse("learners_export_csv", args=[course.key])
    french = list(csv.reader(io.StringIO(b"".join(client_for(course_admin).get(url, headers={"accept-language": "fr"}).streaming_content).decode())))
    assert french[0][:3] == ["Nom d'utilisateur", "Nom complet", "E-mail"]
    english = list(csv.reader(io.StringIO(b"".join(client_for(course_admin).get(url).streaming_content).decode())))
    assert english[0][:3] == ["username", "full_name", "email"]


def test_an_api_error_is_in_the_language_asked_for(client_for, course, course_admin):
    url = reverse("api_course_roster", args=[course.key])
    french = client_for(course_admin).get(url, {"page_size": "0"}, headers={"accept-language": "fr"})
    assert french.status_code == 400
    assert french.json()["page_size"] == ["Indiquez un nombre entier de 1 à 500."]
    assert client_for(course_admin).get(url, {"page_size": "0"}).json()["page_size"] == ["Give a whole number from 1 to 500."]


def test_the_course_admin_offers_the_language(client_for, course, platform_admin):
    page = client_for(platform_admin).get(reverse("admin:courses_course_change", args=[course.pk]), headers={"accept-language": "fr"})
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="language"' in html and '<label for="id_language">Langue' in html and "La langue des e-mails envoyés" in html
