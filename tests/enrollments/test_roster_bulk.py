"""The Learners tab's bulk actions: on the selected rows or on every row
matching the filter, previewed per outcome (nothing written), confirmed with
the preview's fingerprint, applied through roster_apply (audited), refused
whole over another course's or a stale selection; a preview made stale by a
change in between is shown again instead of applied."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from courses.models import CohortMembership
from enrollments.models import Enrollment, EnrollmentAudit, RosterJob, Source

from ..factories import CohortFactory, EnrollmentFactory, UserFactory

User = get_user_model()
pytestmark = pytest.mark.django_db


def bulk_url(course, **params) -> str:
    from urllib.parse import urlencode

    return reverse("learners_bulk", args=[course.key]) + "?" + urlencode(params, doseq=True)


@pytest.fixture
def roster(course, other_course):
    made = {}
    for name, source in (("ann", Source.CODE), ("bea", Source.CODE), ("cid", Source.BATCH), ("dot", Source.CODE)):
        made[name] = EnrollmentFactory(course=course, user=UserFactory(username=name, first_name=name.title(), last_name="Learner"), source=source)
    made["foreign"] = EnrollmentFactory(course=other_course, user=UserFactory(username="foreign"), source=Source.CODE)
    return made


def preview(client, url, data):
    """The preview (nothing written) of the options ``data``: the response and its Confirm form's fingerprint."""
    response = client.post(url, {**data, "step": "preview"})
    assert response.status_code == 200, response.content.decode()
    found = re.search(r'name="fingerprint" value="([0-9a-f]+)"', response.content.decode())
    return response, found.group(1) if found else ""


def confirm(client, url, data):
    """Preview, then Confirm what it showed."""
    _, fingerprint = preview(client, url, data)
    return client.post(url, {**data, "step": "confirm", "fingerprint": fingerprint})


def state(*enrollments):
    return [(e.user.username, *Enrollment.objects.values_list("is_active", "mode").get(pk=e.pk)) for e in enrollments]


def test_the_confirmation_says_how_many_and_names_them(client_for, course, course_staff, roster):
    response = client_for(course_staff).get(bulk_url(course, action="unenroll", ids=[roster["ann"].pk, roster["cid"].pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Unenroll 2 learners?" in html
    assert "Among them: ann, cid." in html
    assert 'name="expected" value="2"' in html and 'name="reason"' in html


def test_every_matching_row_is_counted_with_one_query_at_any_size(client_for, course, course_admin):
    client = client_for(course_admin)
    counts = []
    for size in (5, 60):
        users = User.objects.bulk_create([User(username=f"b{size}-{i}", email=f"b{size}-{i}@example.com") for i in range(size)])
        Enrollment.objects.bulk_create([Enrollment(user=u, course=course, source=Source.CODE) for u in users])
        expected = Enrollment.objects.filter(course=course, source=Source.CODE).count()
        with CaptureQueriesContext(connection) as queries:
            html = client.get(bulk_url(course, action="change_mode", scope="all", source="code")).content.decode()
        assert f"Change the mode of {expected} learners?" in html
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


def test_change_mode_of_every_learner_matching_the_filter(client_for, course, course_admin, roster):
    client = client_for(course_admin)
    url = bulk_url(course, action="change_mode", scope="all", source="code", q="learner")
    html = client.get(url).content.decode()
    assert "Change the mode of 3 learners?" in html and "every learner matching the search and filters" in html
    response = confirm(client, url, {"expected": "3", "mode": "verified", "reason": "Paid"})
    assert response.status_code == 302
    assert response["Location"] == reverse("instructor_learners", args=[course.key]) + "?q=learner&source=code"
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["Change mode: 3 learners changed."]
    assert state(roster["ann"], roster["bea"], roster["dot"], roster["cid"], roster["foreign"]) == [
        ("ann", True, "verified"), ("bea", True, "verified"), ("dot", True, "verified"), ("cid", True, "audit"), ("foreign", True, "audit"),
    ]
    audits = EnrollmentAudit.objects.filter(course=course, reason="Paid")
    assert sorted(a.identifier for a in audits) == ["ann", "bea", "dot"]
    assert {(a.mode_before, a.mode_after) for a in audits} == {("audit", "verified")}
    assert len({a.operation_id for a in audits}) == 1


def test_unenroll_the_selected_rows_with_a_reason(client_for, course, course_staff, roster):
    client = client_for(course_staff)
    url = bulk_url(course, action="unenroll", ids=[roster["ann"].pk, roster["bea"].pk], status="active")
    response = confirm(client, url, {"expected": "2", "reason": "Left the company", "email_students": "on"})
    assert response.status_code == 302
    assert response["Location"].endswith("?status=active")
    assert state(roster["ann"], roster["bea"], roster["cid"]) == [("ann", False, "audit"), ("bea", False, "audit"), ("cid", True, "audit")]
    assert EnrollmentAudit.objects.filter(course=course, reason="Left the company", state_after="unenrolled").count() == 2


def test_move_every_matching_learner_to_a_cohort(client_for, course, course_admin, roster):
    cohort = CohortFactory(course=course, name="Evening")
    url = bulk_url(course, action="move_cohort", scope="all", source="batch")
    response = confirm(client_for(course_admin), url, {"expected": "1", "cohort": str(cohort.pk)})
    assert response.status_code == 302
    assert list(CohortMembership.objects.filter(course=course).values_list("user__username", "cohort__name")) == [("cid", "Evening")]


def test_a_selection_holding_another_courses_row_changes_nothing(client_for, course, course_admin, roster):
    client = client_for(course_admin)
    url = bulk_url(course, action="unenroll", ids=[roster["ann"].pk, roster["foreign"].pk])
    for response in (client.get(url), client.post(url, {"expected": "2"})):
        assert response.status_code == 400
        assert "1 learner of the selection is not in this course&#x27;s roster" in response.content.decode()
    assert state(roster["ann"], roster["foreign"]) == [("ann", True, "audit"), ("foreign", True, "audit")]
    assert not EnrollmentAudit.objects.exists()


def test_a_filter_that_now_matches_more_rows_asks_again(client_for, course, course_admin, roster):
    client = client_for(course_admin)
    url = bulk_url(course, action="unenroll", scope="all", source="code")
    assert "Unenroll 3 learners?" in client.get(url).content.decode()
    EnrollmentFactory(course=course, user=UserFactory(username="late"), source=Source.CODE)  # joined meanwhile
    response = client.post(url, {"expected": "3"})
    html = response.content.decode()
    assert response.status_code == 400
    assert "The selection now holds 4 learners, not 3. Nothing was changed" in html
    assert 'name="expected" value="4"' in html
    assert Enrollment.objects.filter(course=course, is_active=False).count() == 0


def test_an_empty_selection_or_an_unknown_action_is_refused(client_for, course, course_admin, roster):
    client = client_for(course_admin)
    response = client.get(bulk_url(course, action="unenroll"))
    assert response.status_code == 400 and "Select at least one learner" in response.content.decode()
    response = client.get(bulk_url(course, action="delete", ids=[roster["ann"].pk]))
    assert response.status_code == 400 and "Unknown action “delete”" in response.content.decode()
    response = client.get(bulk_url(course, action="unenroll", ids=["1 OR 1=1"]))
    assert response.status_code == 400 and "The selection is not valid" in response.content.decode()
    response = client.get(bulk_url(course, action="unenroll", scope="all", mode="gold"))
    assert response.status_code == 400 and "Unknown mode" in response.content.decode()
    response = client.get(bulk_url(course, action="unenroll", scope="all", q="nobody-like-this"))
    assert response.status_code == 400 and "Nobody matches the filter" in response.content.decode()


def test_a_mode_the_course_does_not_offer_is_refused(client_for, course, course_admin, roster):
    url = bulk_url(course, action="change_mode", ids=[roster["ann"].pk])
    response = client_for(course_admin).post(url, {"expected": "1", "mode": "professional"})
    assert response.status_code == 400
    assert state(roster["ann"]) == [("ann", True, "audit")]


def test_above_the_sync_limit_it_runs_as_a_job(client_for, course, course_admin, roster, settings, django_capture_on_commit_callbacks):
    settings.ENROLLMENT_SYNC_LIMIT = 2
    url = bulk_url(course, action="unenroll", scope="all", source="code")
    with django_capture_on_commit_callbacks(execute=True):
        response = confirm(client_for(course_admin), url, {"expected": "3", "email_students": ""})
    job = RosterJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("roster_job_status", args=[course.key, job.public_id])
    job.refresh_from_db()
    assert (job.status, job.total) == ("succeeded", 3)
    assert state(roster["ann"], roster["bea"], roster["dot"], roster["cid"]) == [
        ("ann", False, "audit"), ("bea", False, "audit"), ("dot", False, "audit"), ("cid", True, "audit"),
    ]


@pytest.mark.parametrize(("persona", "status"), [("other_staff", 403), ("learner", 403), (None, 302)])
def test_only_the_course_team_may_act(request, client_for, course, roster, persona, status):
    user = request.getfixturevalue(persona) if persona else None
    client = client_for(user)
    url = bulk_url(course, action="unenroll", ids=[roster["ann"].pk])
    assert client.get(url).status_code == status
    assert client.post(url, {"expected": "1"}).status_code == status
    assert state(roster["ann"]) == [("ann", True, "audit")]


def test_an_unknown_course_is_404(client_for, course_admin):
    assert client_for(course_admin).get(reverse("learners_bulk", args=["course-v1:No+Such+Run"])).status_code == 404


def test_a_post_without_the_csrf_token_is_refused(course, course_admin, roster):
    client = Client(enforce_csrf_checks=True)
    client.force_login(course_admin)
    response = client.post(bulk_url(course, action="unenroll", ids=[roster["ann"].pk]), {"expected": "1"})
    assert response.status_code == 403
    assert state(roster["ann"]) == [("ann", True, "audit")]


def test_the_bulk_bar_exports_the_selected_rows_or_every_matching_row(client_for, course, course_admin, roster):
    client = client_for(course_admin)
    url = reverse("learners_export_csv", args=[course.key])
    selected = b"".join(client.get(url, {"action": "unenroll", "scope": "selected", "ids": [roster["bea"].pk]}).streaming_content).decode()
    assert [line.split(",")[0] for line in selected.splitlines()[1:]] == ["bea"]
    everyone = b"".join(client.get(url, {"scope": "all", "ids": [roster["bea"].pk], "source": "code"}).streaming_content).decode()
    assert sorted(line.split(",")[0] for line in everyone.splitlines()[1:]) == ["ann", "bea", "dot"]


def test_the_page_offers_the_bulk_bar_with_the_filter(client_for, course, course_admin, roster):
    html = client_for(course_admin).get(reverse("instructor_learners", args=[course.key]), {"source": "code"}).content.decode()
    bar = html[html.index('id="learners-bulk"'):]
    bar = bar[: bar.index("</form>")]
    assert '<input type="hidden" name="source" value="code">' in bar
    assert "all 3 learners matching" in bar
    assert f'name="ids" value="{roster["ann"].pk}" form="learners-bulk"' in html
