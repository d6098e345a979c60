"""Texts the product stores in English and shows later (issue 17 follow-up):
a system audit reason, a job's error, a settings-history summary, an undo's
note are shown in the reader's language, while the database, the API and the
CSV export keep the English text; a reason a person typed is shown as typed."""

import csv
import html
import io
import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation
from rest_framework.test import APIClient

from courses.models import CourseRole, CourseSettingsChange
from enrollment_site.lib.stored_texts import shown, shown_error
from enrollments import reasons
from enrollments.models import BulkEnrollJob, EnrollmentAudit, UndoJob
from enrollments.services import cohort_create, cohort_delete, course_settings_update, enrollment_batch_update
from enrollments.services.team import course_team_member_add
from tests.enrollments.test_course_settings import form_data
from tests.factories import UserFactory
from tests.i18n.catalogs import ensure_compiled

pytestmark = pytest.mark.django_db

ADDED_FR = "Ajouté(e) à l'équipe pédagogique"


@pytest.fixture(scope="module", autouse=True)
def _compiled_catalogs():
    ensure_compiled()


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page(client, url, language="fr") -> str:
    response = client.get(url, headers={"accept-language": language})
    assert response.status_code == 200
    return html.unescape(response.content.decode())


@pytest.fixture
def team_added(course, course_admin):
    """A member added to the course team: the system writes "Added to the course team"."""
    member = UserFactory(username="tess")
    course_team_member_add(course=course, user=member, role=CourseRole.Role.STAFF, actor=course_admin)
    return member


def test_a_system_reason_is_stored_in_english_and_shown_in_french_in_the_audit_log(course, course_admin, team_added):
    assert EnrollmentAudit.objects.get(course=course, user=team_added).reason == "Added to the course team"
    url = reverse("instructor_audit", args=[course.key])

    french = page(logged_in(course_admin), url)
    assert ADDED_FR in french and "Added to the course team" not in french
    assert "فريق المقرر" in page(logged_in(course_admin), url, language="ar")
    assert "Added to the course team" in page(logged_in(course_admin), url, language="")


def test_the_export_and_the_api_keep_the_english_reason(course, course_admin, team_added):
    response = logged_in(course_admin).get(reverse("instructor_audit_export", args=[course.key]), headers={"accept-language": "fr"})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig")))) if response.streaming else \
        list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert any("Added to the course team" in row for row in rows[1:]) and not any(ADDED_FR in cell for row in rows for cell in row)

    from rest_framework.authtoken.models import Token

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=course_admin).key}")
    body = api.get(f"/api/courses/v1/{course.key}/enrollments/{team_added.username}/", headers={"accept-language": "fr"}).json()
    assert [h["change"]["reason"] for h in body["history"] if h["change"]] == ["Added to the course team"]


def test_the_story_panel_translates_a_system_reason_and_keeps_a_typed_one(course, course_admin, team_added, learner):
    enrollment_batch_update(course=course, identifiers=[learner.username], action="enroll", auto_enroll=True, email_students=False,
                            actor=course_admin, reason="Added to the course team, as Ana asked")
    client = logged_in(course_admin)
    story = reverse("learner_story", args=[course.key])

    assert ADDED_FR in page(client, f"{story}?who={team_added.username}")
    # A person's own words are never replaced, even when they start like a system reason.
    assert "Added to the course team, as Ana asked" in page(client, f"{story}?who={learner.username}")


def test_a_job_error_written_by_the_sweep_is_shown_in_french_and_the_api_keeps_it_english(course, course_admin):
    undo = UndoJob.objects.create(course=course, requester=course_admin, operation_id=uuid.uuid4(), status=UndoJob.Status.FAILED,
                                  error=UndoJob.ERROR_NEVER_STARTED)
    text = page(logged_in(course_admin), reverse("undo_job_status", args=[course.key, undo.public_id]))
    assert "La tâche n'a jamais démarré" in text and "Échec" in text
    assert "is a worker running" not in text

    bulk = BulkEnrollJob.objects.create(requester=course_admin, status=BulkEnrollJob.Status.FAILED, error=BulkEnrollJob.ERROR_NEVER_STARTED)
    api = APIClient()
    api.force_authenticate(course_admin)
    body = api.get(reverse("api_bulk_enroll_job", args=[str(bulk.public_id)]), headers={"accept-language": "fr"}).json()
    assert body["error"] == "The job never started: is a worker running?" and body["status"] == "failed"


def test_settings_history_summaries_and_the_saved_message_in_french(course, course_admin):
    client = logged_in(course_admin)
    url = reverse("instructor_settings", args=[course.key])
    response = client.post(url, form_data(course, default_duration_days="30"), headers={"accept-language": "fr"}, follow=True)
    assert response.status_code == 200
    assert [str(m) for m in response.context["messages"]] == ["Paramètres enregistrés. Jours d'accès par défaut : aucun → 30."]
    cohort = cohort_create(course=course, name="Soir", actor=course_admin)
    cohort_delete(cohort=cohort, actor=course_admin)

    stored = list(CourseSettingsChange.objects.filter(course=course).order_by("id").values_list("summary", flat=True))
    assert stored[0] == "Default days of access: none → 30"
    assert stored[1:] == ["Cohort Soir created", "Cohort Soir deleted; its 0 members are in no cohort now"]

    text = page(client, url)
    assert "Cohorte Soir créée" in text and "Cohort Soir created" not in text
    assert "Jours d'accès par défaut : aucun → 30" in text and "Default days of access" not in text
    assert "Cohort Soir created" in page(client, url, language="")


def test_a_saved_message_lists_the_changes_in_the_readers_language(course, course_admin):
    changes = course_settings_update(course=course, actor=course_admin, self_enrollment=not course.self_enrollment)
    assert changes.summary.startswith("Self-enrollment: ")
    with translation.override("fr"):
        assert changes.summary_shown.startswith("Auto-inscription : ")
    with translation.override("de"):
        assert changes.summary_shown.startswith("Selbsteinschreibung: ")


def test_shown_translates_registered_texts_only():
    with translation.override("fr"):
        assert shown(reasons.EXPIRY) == "La période d'accès a pris fin."
        assert shown("Import people.xlsx") == "Importation people.xlsx"
        # A stored reason that quotes another is translated throughout.
        assert shown("No longer qualifies: Rule: Night shift") == "Ne remplit plus les conditions : Règle : Night shift"
        # Typed text, and catalog entries nobody registered as stored, stay as they are.
        assert shown("Spring intake") == "Spring intake"
        assert shown("Courses") == "Courses"
        assert shown("") == ""
    assert shown(reasons.EXPIRY) == "The period of access ended."


def test_an_undo_note_and_a_preview_job_message_are_shown_translated():
    when = f"{timezone.now() - timedelta(days=1):%Y-%m-%d %H:%M}"
    note = reasons.LEFT_ALONE_CHANGED_BY % {"actor": "bob", "when": when, "source": reasons.source_label_english("batch")}
    assert note == f"changed since by bob at {when} (Batch page)"
    message = reasons.PREVIEW_CHANGED.english(12, listed="cy: will enroll → already enrolled and 2 more")
    with translation.override("fr"):
        assert shown(note) == f"modifié depuis par bob le {when} (Page d'inscription par lot)"
        assert shown(message) == ("Rien n'a été modifié : le cours a changé depuis l'aperçu pour 12 personnes "
                                  "(cy: sera inscrit → déjà inscrit et 2 de plus). Un nouvel aperçu est prêt à être confirmé.")
    with translation.override("ar"):
        assert shown(reasons.LEFT_ALONE_NO_COHORT % {"cohort": "Red"}) == "المجموعة Red لم تعد موجودة"


def test_a_job_error_from_a_refusal_is_looked_up_in_the_catalog():
    stored = reasons.UPLOAD_REFUSED % {"file": "list.csv", "error": "The file holds no usernames or emails."}
    with translation.override("fr"):
        assert shown_error(stored) == "list.csv : Le fichier ne contient aucun nom d'utilisateur ni aucune adresse e-mail. Rien n'a été modifié."
        assert shown_error("Something nobody marked.") == "Something nobody marked."


def test_the_undo_preview_says_what_it_restores_in_the_readers_language():
    from enrollments.models import State
    from enrollments.services.undo_decide import Current, Restore

    restore = Restore(("user", 1), 1, "cy", Current(State.ENROLLED, mode="verified", cohort="Red"), State.ENROLLED, "audit", "", (None, None))
    assert restore.description.startswith("mode verified → audit; cohort Red → none")
    with translation.override("fr"):
        assert restore.description.startswith("mode verified → audit; cohorte Red → aucune")


def test_the_organisation_user_page_shows_the_last_change_in_french(platform_admin, team_added):
    text = page(logged_in(platform_admin), reverse("org_user_page", args=[team_added.pk]))
    assert f"Équipe pédagogique <span class=\"text-muted small\">({ADDED_FR})</span>" in text
    assert "(Added to the course team)" not in text and ">team <" not in text


def test_an_undo_jobs_left_alone_notes_are_shown_translated_with_their_identifiers():
    job = UndoJob(left_alone=["cy@example.com: " + reasons.LEFT_ALONE_OUTSIDE, "dee: " + reasons.LEFT_ALONE_NO_COHORT % {"cohort": "Red: evening"}])
    with translation.override("fr"):
        assert job.left_alone_shown == [
            ("cy@example.com", "modifié depuis, hors du journal d'audit : plus tel que l'opération l'a laissé"),
            ("dee", "la cohorte Red: evening n'existe plus"),
        ]
