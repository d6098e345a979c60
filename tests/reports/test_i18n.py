"""The Data download tab in the language of the request, and report files in
the language of whoever asked for them: the header and the words in the cells,
never the file name nor the periods report's documented columns."""

import csv
import html
import io

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse

from reports import services
from reports.models import ReportTask
from reports.services import report_request, report_run

from ..codes.factories import EnrollmentCodeFactory
from ..factories import AllowanceFactory

pytestmark = pytest.mark.django_db

FR = {"accept-language": "fr"}


def data_url(course):
    return reverse("instructor_data", kwargs={"course_key": course.key})


def read_file(task: ReportTask) -> list[list[str]]:
    with default_storage.open(task.file.name, "rb") as f:
        return list(csv.reader(io.StringIO(f.read().decode("utf-8"))))


@pytest.mark.parametrize(("days", "words"), [(1, "au cours du dernier 1 jour."), (5, "au cours des 5 derniers jours.")])
def test_the_data_tab_in_french_with_plurals(settings, client_for, course, course_staff, days, words):
    settings.UNDO_DAYS = days
    page = html.unescape(client_for(course_staff).get(data_url(course), headers=FR).content.decode())
    assert "Aucune tâche terminée " + words in page
    assert "Tâches en attente" in page and "Rapports disponibles au téléchargement" in page
    assert "Télécharger tous les codes en CSV" in page
    assert "Pending tasks" not in page


@pytest.mark.django_db(transaction=True)
def test_asking_in_french_gives_a_french_file_and_message(settings, client_for, course, course_staff):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    AllowanceFactory.create_batch(2, course=course)
    client = client_for(course_staff)
    page = html.unescape(
        client.post(reverse("report_request", kwargs={"course_key": course.key}), {"kind": "may_enroll"}, headers=FR, follow=True).content.decode()
    )
    task = ReportTask.objects.get()
    assert task.language == "fr"
    assert "Le rapport « Apprenants pouvant s'inscrire » est prêt" in page and "(2 lignes)" in page
    header, *body = read_file(task)
    assert header == ["cours", "e-mail", "inscription automatique", "autorisé par", "autorisé le"]
    assert len(body) == 2
    assert task.filename.startswith("Acme_ENR101_may_enroll_info_")


@pytest.mark.parametrize(("rows", "words"), [(1, "(1 ligne)"), (5, "(5 lignes)")])
def test_finished_reports_say_their_rows_in_french(client_for, course, course_staff, rows, words):
    AllowanceFactory.create_batch(rows, course=course)
    task, _created = report_request(course=course, kind="may_enroll", requester=course_staff, language="fr")
    report_run(task_id=task.pk)
    page = html.unescape(client_for(course_staff).get(data_url(course), headers=FR).content.decode())
    assert words in page and "Rapport : Apprenants pouvant s'inscrire" in page  # the Task history's type


def test_the_codes_report_words_follow_the_requester_and_the_periods_columns_stay_english(course):
    EnrollmentCodeFactory(courses=[course], max_uses=None)
    task, _created = report_request(course=course, kind="codes", requester=None, language="fr")
    header, row = read_file(report_run(task_id=task.pk))
    assert header[:4] == ["cours", "code", "lot", "statut"] and header[-1] == "fuseau horaire d'expiration"
    assert row[3] == "Actif" and row[5] == "illimité"
    periods, _created = report_request(course=course, kind="periods", requester=None, language="fr")
    assert read_file(report_run(task_id=periods.pk))[0] == ["username", "email", "access_from", "access_until", "ended", "ended_at"]
    english, _created = report_request(course=course, kind="may_enroll", requester=None, language="en")
    assert read_file(report_run(task_id=english.pk))[0] == ["course", "email", "auto_enroll", "allowed_by", "allowed_at"]


@pytest.mark.postgresql
def test_copy_and_row_by_row_give_the_same_french_file(monkeypatch, course):
    EnrollmentCodeFactory(courses=[course], max_uses=None)
    EnrollmentCodeFactory(courses=[course], max_uses=1, uses=1)
    files = []
    for by_copy in (False, True):
        monkeypatch.setattr(services, "by_copy", lambda by_copy=by_copy: by_copy)
        task, _created = report_request(course=course, kind="codes", requester=None, language="fr")
        with default_storage.open(report_run(task_id=task.pk).file.name, "rb") as f:
            files.append(f.read())
    assert files[0] == files[1]
    assert "illimité".encode() in files[0] and "Utilisé".encode() in files[0]


def test_the_data_tab_in_arabic(client_for, course, course_staff):
    page = client_for(course_staff).get(data_url(course), headers={"accept-language": "ar"}).content.decode()
    assert "التقارير" in page and "المهام المعلّقة" in page and "سجل المهام" in page
