"""The undo page: the persona matrix for the preview and the confirm, another
course's operation is 404, the preview writes nothing, the confirm redirects
to the undo's own operation in the audit log (Post/Redirect/Get), and the
Undo links on the audit log and a batch's results."""

import uuid

import pytest
from django.urls import reverse

from enrollments.models import Enrollment, EnrollmentAudit, Notification, Source
from enrollments.services import enrollment_batch_update
from tests.factories import EnrollmentFactory, UserFactory

pytestmark = pytest.mark.django_db

PERSONAS = [("platform_admin", 200), ("course_admin", 200), ("course_staff", 200), ("other_staff", 403), ("learner", 403), (None, 302)]


@pytest.fixture
def operation(course, course_admin):
    """An unenroll of kim and lea by the course admin."""
    for name in ("kim", "lea"):
        EnrollmentFactory(course=course, user=UserFactory(username=name, email=f"{name}@example.com"))
    return enrollment_batch_update(
        course=course, identifiers=["kim", "lea"], action="unenroll", auto_enroll=False, email_students=False, actor=course_admin,
    ).operation_id


def undo_url(course, operation_id):
    return reverse("operation_undo", args=[course.key, operation_id])


def active(course):
    return sorted(Enrollment.objects.filter(course=course, is_active=True).values_list("user__username", flat=True))


@pytest.mark.parametrize("persona, status", PERSONAS)
def test_the_preview_is_for_the_course_team_and_writes_nothing(request, client_for, course, operation, persona, status):
    user = request.getfixturevalue(persona) if persona else None
    audits = EnrollmentAudit.objects.count()
    response = client_for(user).get(undo_url(course, operation))
    assert response.status_code == status
    if status == 200:
        page = response.content.decode()
        assert "2 people would be restored" in page and "enrolled → unenrolled" not in page and "unenrolled → enrolled" in page
    assert (active(course), EnrollmentAudit.objects.count()) == ([], audits)


@pytest.mark.parametrize("persona, status", PERSONAS)
def test_the_confirm_is_for_the_course_team(request, client_for, course, operation, persona, status):
    user = request.getfixturevalue(persona) if persona else None
    client = client_for(user)
    response = client.post(undo_url(course, operation))
    assert response.status_code == (302 if status == 200 else status)
    assert active(course) == (["kim", "lea"] if status == 200 else [])
    if status == 200:
        undo = EnrollmentAudit.objects.filter(source=Source.UNDO).first()
        assert response["Location"] == reverse("instructor_audit", args=[course.key]) + f"?operation={undo.operation_id}"
        page = client.get(response["Location"]).content.decode()
        assert "Undone: 2 people restored" in page and f"?operation={undo.operation_id}" in page


@pytest.mark.parametrize("method", ["get", "post"])
def test_another_courses_operation_or_an_unknown_one_is_404(client_for, course, other_course, other_staff, course_staff, operation, method):
    assert getattr(client_for(other_staff), method)(undo_url(other_course, operation)).status_code == 404
    assert getattr(client_for(course_staff), method)(undo_url(course, uuid.uuid4())).status_code == 404
    assert active(course) == []


def test_the_confirm_asks_for_emails_only_when_ticked(client_for, course, course_staff, operation):
    client = client_for(course_staff)
    client.post(undo_url(course, operation))
    undo = EnrollmentAudit.objects.filter(source=Source.UNDO).first().operation_id
    assert not Notification.objects.filter(operation_id=undo).exists()
    client.post(undo_url(course, undo), {"email_students": "on"})
    redo = EnrollmentAudit.objects.filter(undoes=undo).first().operation_id
    assert Notification.objects.filter(operation_id=redo).count() == 2


def test_a_second_undo_says_it_was_undone_already(client_for, course, course_staff, operation):
    client = client_for(course_staff)
    client.post(undo_url(course, operation))
    page = client.get(undo_url(course, operation)).content.decode()
    assert "undone already, by coursestaff" in page and 'id="undo-confirm"' not in page
    response = client.post(undo_url(course, operation), follow=True)
    assert "undone already" in response.content.decode()
    assert EnrollmentAudit.objects.filter(source=Source.UNDO).count() == 2


def test_people_changed_since_are_listed_on_the_preview(client_for, course, course_staff, course_admin, operation):
    enrollment_batch_update(course=course, identifiers=["lea"], action="enroll", auto_enroll=False, email_students=False, actor=course_staff)
    page = client_for(course_admin).get(undo_url(course, operation)).content.decode()
    assert "1 person would be restored" in page
    assert "1 person was changed since and will be left alone" in page and "lea: changed since by coursestaff" in page


def test_undo_links_on_the_audit_log_and_the_batch_results(client_for, course, course_staff):
    EnrollmentFactory(course=course, user=UserFactory(username="kim"), is_active=False)
    client = client_for(course_staff)
    response = client.post(reverse("batch_enrollment", args=[course.key]), {"identifiers": "kim", "action": "enroll", "auto_enroll": "on"})
    response = client.post(response["Location"] + "confirm/")  # the preview, confirmed
    results = client.get(response["Location"]).content.decode()
    operation = EnrollmentAudit.objects.get(course=course).operation_id
    assert f'href="{undo_url(course, operation)}" id="batch-undo"' in results
    assert f'href="{undo_url(course, operation)}"' in client.get(reverse("instructor_audit", args=[course.key])).content.decode()


def test_undo_link_on_a_finished_learners_table_job(client_for, course, course_staff):
    from enrollments.models import RosterJob

    job = RosterJob.objects.create(course=course, requester=course_staff, action="unenroll", status=RosterJob.Status.SUCCEEDED,
                                   total=1, done=1, summary={"changed": 1, "unchanged": 0})
    client = client_for(course_staff)
    page = client.get(reverse("roster_job_status", args=[course.key, job.public_id])).content.decode()
    assert f'href="{undo_url(course, job.operation_id)}" id="roster-job-undo"' in page
    fragment = client.get(reverse("roster_job_status", args=[course.key, job.public_id]), headers={"HX-Request": "true"}).content.decode()
    assert 'id="roster-job-undo"' in fragment
