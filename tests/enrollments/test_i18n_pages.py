"""The enrollments pages in the visitor's language (issue 17): a request's
Accept-Language picks French or Arabic; without one the pages stay English.

The catalogs are compiled once for this module (the .mo files are not in the
repository), so these tests read the same translations a server would."""

import html

import pytest
from django.test import Client
from django.urls import reverse

from enrollments.models import Enrollment
from tests.factories import EnrollmentFactory, UserFactory

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page(client, url, language="fr"):
    response = client.get(url, headers={"accept-language": language})
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def preview_of(client, course, identifiers: str, language="fr") -> str:
    response = client.post(
        reverse("batch_enrollment", args=[course.key]),
        {"identifiers": identifiers, "action": "enroll", "auto_enroll": "on", "email_students": "on"},
        headers={"accept-language": language},
    )
    assert response.status_code == 302 and "/preview/" in response["Location"]
    return page(client, response["Location"], language)


def test_the_membership_page_is_in_french_for_a_french_browser(course, course_admin):
    text = page(logged_in(course_admin), reverse("instructor_membership", args=[course.key]))

    for french in ("Inscription par lot", "Noms d'utilisateur ou e-mails", "Prévenir les personnes par e-mail",
                   "Équipe pédagogique", "Importer depuis un tableur", ">Inscrire</button>", ">Désinscrire</button>"):
        assert french in text
    for english in ("Batch enrollment", "Usernames or emails", "Course team", ">Enroll</button>"):
        assert english not in text


def test_without_a_language_the_membership_page_stays_english(course, course_admin):
    text = page(logged_in(course_admin), reverse("instructor_membership", args=[course.key]), language="")

    assert "Batch enrollment" in text and "Course team" in text
    assert "Inscription par lot" not in text


def test_a_french_form_error_is_french_and_changes_nothing(course, course_admin):
    response = logged_in(course_admin).post(
        reverse("batch_enrollment", args=[course.key]), {"identifiers": "", "action": "enroll"}, headers={"accept-language": "fr"},
    )

    assert response.status_code == 400
    assert "Saisissez au moins un nom d'utilisateur ou un e-mail, ou téléversez un fichier." in html.unescape(response.content.decode())
    assert not Enrollment.objects.filter(course=course).exists()


@pytest.mark.parametrize(("count", "phrase"), [(1, "<strong>1 apprenant</strong> dans ce cours."),
                                                (5, "<strong>5 apprenants</strong> dans ce cours.")])
def test_the_learners_tab_counts_learners_in_french(course, course_staff, count, phrase):
    for n in range(count):
        EnrollmentFactory(course=course, user=UserFactory(username=f"learner{n}"))

    text = page(logged_in(course_staff), reverse("instructor_learners", args=[course.key]))

    assert phrase in text
    for french in ("Apprenants", "Exporter en CSV", "Actions groupées", "Nom complet", "Arrivé par"):
        assert french in text
    assert "Export CSV" not in text


@pytest.mark.parametrize(("identifiers", "button"), [
    ("new1@example.com", "Confirmer : inscrire (concerne 1 personne)"),
    ("new1@example.com new2@example.com new3@example.com new4@example.com new5@example.com",
     "Confirmer : inscrire (concerne 5 personnes)"),
])
def test_a_preview_is_in_french_with_its_count(course, course_admin, identifiers, button):
    text = preview_of(logged_in(course_admin), course, identifiers)

    assert "Aperçu : inscrire" in text
    assert "Rien n'a encore été modifié." in text
    assert button in text
    assert "Confirm: enroll" not in text


def test_the_membership_page_and_a_preview_are_in_arabic(course, course_admin):
    client = logged_in(course_admin)

    membership = page(client, reverse("instructor_membership", args=[course.key]), language="ar")
    preview = preview_of(client, course, "new1@example.com new2@example.com new3@example.com", language="ar")

    assert "التسجيل الجماعي" in membership and "فريق المقرر" in membership
    assert "معاينة: تسجيل" in preview
    # Arabic's "few" form (3 to 10).
    assert "تأكيد: تسجيل (يغيّر 3 أشخاص)" in preview
