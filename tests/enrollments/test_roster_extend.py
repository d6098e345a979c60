"""Extending access from the learners table: by some days (from each end, or
from now once it has passed) or until a date, one or many; an ended period is
active again; preview with counts, confirm, audited; bad input changes nothing."""

import datetime as dt
import re

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from enrollments.models import Enrollment, EnrollmentAudit, RosterAction, Source, State
from enrollments.services import roster_apply, roster_preview

from ..factories import EnrollmentFactory, UserFactory

pytestmark = pytest.mark.django_db

DAY = dt.timedelta(days=1)
EXTEND = RosterAction.EXTEND


def make(course, name, **fields):
    return EnrollmentFactory(course=course, user=UserFactory(username=name), **fields)


@pytest.fixture
def rows(course):
    now = timezone.now()
    return {
        "running": make(course, "running", access_from=now - 10 * DAY, access_until=now + 5 * DAY),
        "lapsed": make(course, "lapsed", access_until=now - DAY),  # ended, the expiry task not run yet
        "expired": make(course, "expired", is_active=False, access_until=now - 3 * DAY),
        "open": make(course, "open"),
        "left": make(course, "left", is_active=False, access_until=now + 9 * DAY),
    }


def ids(rows, *names):
    return [rows[n].pk for n in names]


def test_extend_by_days_counts_from_each_end_or_from_now_and_reactivates_an_ended_period(course, course_admin, rows):
    before = {name: (e.is_active, e.access_until) for name, e in rows.items()}
    result = roster_apply(actor=course_admin, course=course, action=EXTEND, enrollment_ids=ids(rows, *rows), extend_days=30, reason="Late start")
    assert (result.changed, result.unchanged) == (3, 2)
    fresh = {e.user.username: e for e in Enrollment.objects.filter(course=course).select_related("user")}
    assert fresh["running"].access_until == before["running"][1] + 30 * DAY
    for name in ("lapsed", "expired"):
        assert fresh[name].is_active
        assert fresh[name].access_until - 30 * DAY >= before[name][1]  # from now, not from the past end
        assert abs(fresh[name].access_until - (timezone.now() + 30 * DAY)) < dt.timedelta(minutes=1)
    assert (fresh["open"].is_active, fresh["open"].access_until) == before["open"]
    assert (fresh["left"].is_active, fresh["left"].access_until) == before["left"]
    audits = {a.identifier: a for a in EnrollmentAudit.objects.filter(course=course)}
    assert set(audits) == {"running", "lapsed", "expired"}
    expired = audits["expired"]
    assert (expired.source, expired.state_before, expired.state_after, expired.reason) == (Source.ROSTER, State.UNENROLLED, State.ENROLLED, "Late start")
    assert (expired.access_until_before, expired.access_until_after) == (before["expired"][1], fresh["expired"].access_until)
    assert expired.operation_id == result.operation_id
    assert audits["running"].access_from_before == audits["running"].access_from_after == rows["running"].access_from


def test_extend_until_a_date_gives_every_row_that_end(course, course_admin, rows):
    until = timezone.now() + 100 * DAY
    roster_apply(actor=course_admin, course=course, action=EXTEND, enrollment_ids=ids(rows, "running", "expired"), extend_until=until)
    assert set(Enrollment.objects.filter(pk__in=ids(rows, "running", "expired")).values_list("is_active", "access_until")) == {(True, until)}


def test_an_end_that_comes_earlier_is_left_alone(course, course_admin, rows):
    result = roster_apply(actor=course_admin, course=course, action=EXTEND, enrollment_ids=ids(rows, "running"), extend_until=timezone.now() + DAY)
    assert (result.changed, result.unchanged) == (0, 1)
    assert not EnrollmentAudit.objects.exists()


@pytest.mark.parametrize(("options", "message"), [
    ({"extend_days": 0}, "1 to 3650 days"),
    ({"extend_days": 3651}, "1 to 3650 days"),
    ({"extend_until": "past"}, "has passed already"),
    ({}, "one of the two"),
    ({"extend_days": 3, "extend_until": "future"}, "one of the two"),
])
def test_bad_options_are_refused_and_change_nothing(course, course_admin, rows, options, message):
    now = timezone.now()
    options = {k: {"past": now - DAY, "future": now + DAY}.get(v, v) for k, v in options.items()}
    with pytest.raises(ValidationError, match=message):
        roster_apply(actor=course_admin, course=course, action=EXTEND, enrollment_ids=ids(rows, *rows), **options)
    assert not EnrollmentAudit.objects.exists()


def test_a_new_end_before_a_rows_start_refuses_the_whole_action(course, course_admin, rows):
    now = timezone.now()
    late = make(course, "late", access_from=now + 50 * DAY, access_until=now + 60 * DAY)
    result = roster_apply(actor=course_admin, course=course, action=EXTEND, enrollment_ids=[late.pk, rows["running"].pk],
                          extend_until=now + 40 * DAY)
    assert result.refused_count == 1 and "late: the new end comes before the start of access" in result.refused[0]
    assert not EnrollmentAudit.objects.exists()


def test_the_preview_counts_extended_reactivated_and_left_alone(course, rows):
    preview = roster_preview(course=course, action=EXTEND, enrollment_ids=ids(rows, *rows), extend_days=30)
    counts = {g.label: g.count for g in preview.groups}
    assert counts == {
        "will be extended by 30 days": 1,
        "period ended: will be active again, for 30 days": 2,
        "no end of access: left alone": 1,
        "not enrolled (unenrolled): left alone": 1,
    }
    assert preview.changes == 3 and preview.emails == 0
    assert not EnrollmentAudit.objects.exists()


def _many(course, n):
    now = timezone.now()
    users = UserFactory.create_batch(n)
    Enrollment.objects.bulk_create([Enrollment(user=u, course=course, access_until=now + (i - n // 2) * DAY, is_active=i % 3 != 0) for i, u in enumerate(users)])
    return list(Enrollment.objects.filter(course=course).values_list("pk", flat=True))


def test_the_queries_do_not_grow_with_the_selection(course, course_admin):
    counts = []
    for n in (3, 30):
        Enrollment.objects.filter(course=course).delete()
        chosen = _many(course, n)
        with CaptureQueriesContext(connection) as ctx:
            result = roster_apply(actor=course_admin, course=course, action=EXTEND, enrollment_ids=chosen, extend_days=7)
        assert result.changed > 0
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]


def test_the_bulk_page_previews_confirms_and_says_what_it_did(client_for, course, course_admin, rows):
    client = client_for(course_admin)
    url = reverse("learners_bulk", args=[course.key]) + "?action=extend&" + "&".join(f"ids={i}" for i in ids(rows, *rows))
    page = client.get(url).content.decode()
    assert "Extend access of 5 learners?" in page and 'name="extend_days"' in page and 'name="extend_until"' in page
    preview = client.post(url, {"expected": "5", "step": "preview", "extend_days": "30"})
    html = preview.content.decode()
    assert preview.status_code == 200
    assert "will be extended by 30 days" in html and "period ended: will be active again, for 30 days" in html
    assert "Confirm: extend access of 3 learners" in html
    fingerprint = re.search(r'name="fingerprint" value="([0-9a-f]+)"', html).group(1)
    done = client.post(url, {"expected": "5", "step": "confirm", "extend_days": "30", "fingerprint": fingerprint})
    assert done.status_code == 302
    assert EnrollmentAudit.objects.filter(course=course, source=Source.ROSTER).count() == 3
    assert Enrollment.objects.get(pk=rows["expired"].pk).is_active


@pytest.mark.parametrize(("data", "message"), [
    ({"extend_days": "0"}, "A duration is from 1 to 3650 days"),
    ({"extend_days": "ten"}, "is not a whole number of days"),
    ({"extend_until": "2001-01-01"}, "That day has passed"),
    ({"extend_until": "31/12/2030"}, "is not a date"),
    ({}, "Give a number of days or a date, one of the two."),
])
def test_the_bulk_page_names_bad_input_and_changes_nothing(client_for, course, course_admin, rows, data, message):
    url = reverse("learners_bulk", args=[course.key]) + f"?action=extend&ids={rows['running'].pk}"
    response = client_for(course_admin).post(url, {"expected": "1", "step": "preview", **data})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not EnrollmentAudit.objects.exists()


def test_a_row_links_extend_to_the_bulk_page_for_that_row(client_for, course, course_admin, rows):
    client = client_for(course_admin)
    response = client.get(reverse("learner_action", args=[course.key, rows["running"].pk, "extend"]))
    assert response.status_code == 302 and f"ids={rows['running'].pk}" in response["Location"] and "action=extend" in response["Location"]
    learners = client.get(reverse("instructor_learners", args=[course.key]), {"q": "running"}).content.decode()
    assert "Extend access<span" in learners


def test_a_large_extension_runs_as_a_job_with_its_options(course, course_admin, rows, settings, monkeypatch, django_capture_on_commit_callbacks):
    from enrollments.models import RosterJob
    from enrollments.services import roster as roster_module

    settings.ENROLLMENT_SYNC_LIMIT = 2
    monkeypatch.setattr(roster_module, "ROSTER_CHUNK", 2)
    until = timezone.now() + 200 * DAY
    with django_capture_on_commit_callbacks(execute=True):
        result = roster_apply(actor=course_admin, course=course, action=EXTEND, enrollment_ids=ids(rows, *rows), extend_until=until)
    job = RosterJob.objects.get(pk=result.job.pk)
    assert (job.status, job.extend_until, job.summary) == (RosterJob.Status.SUCCEEDED, until, {"changed": 3, "unchanged": 2, "refused": 0})
    assert set(Enrollment.objects.filter(pk__in=ids(rows, "running", "lapsed", "expired")).values_list("is_active", "access_until")) == {(True, until)}
    assert set(EnrollmentAudit.objects.values_list("operation_id", flat=True)) == {job.operation_id}
