"""The periods report: one row per person and period of access, from the
audit trail (periods that ended by expiry, renewal or an unenroll) and the
enrollment (the current period, or one ended by an unenroll whose audit row
did not record it); who may ask for it; and the COPY path's bytes equal to the
row-by-row path's."""

import datetime

import pytest
import time_machine
from django.utils import timezone

from enrollments.models import Enrollment, EnrollmentAudit, Source, State
from enrollments.periods import period_request
from enrollments.services import enrollment_batch_update
from enrollments.tasks import expire_enrollments
from organisations.models import Assignment, UnitKind
from organisations.selectors import Target
from organisations.services import assignment_apply, assignment_link, unit_members_add
from reports.models import ReportTask
from reports.services import report_filename

from ..factories import CourseFactory, EnrollmentFactory, UserFactory
from ..organisations.factories import OrgUnitFactory
from .test_copy import assert_same_bytes
from .test_services import produce, read_csv
from .test_views import request_url

pytestmark = pytest.mark.django_db

START = timezone.make_aware(datetime.datetime(2026, 1, 15, 10, 0))
UTC = datetime.UTC


def _utc(moment: datetime.datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S}"


def _enroll(course, usernames, period=None):
    enrollment_batch_update(course=course, identifiers=usernames, action="enroll", auto_enroll=True,
                            email_students=False, actor=None, period=period)


def _three_years_of_periods(course, platform_admin):
    """annual: renewed every year for three years (a current fourth period);
    lapsed: expired at the first year's end; fresh: enrolled for 30 days in the
    last year; quitter: unenrolled during the first year; open: no period."""
    team = Target(unit=OrgUnitFactory(kind=UnitKind.TEAM))
    annual = UserFactory(username="annual", email="annual@example.org")
    for name in ("lapsed", "fresh", "quitter", "open"):
        UserFactory(username=name, email=f"{name}@example.org")
    with time_machine.travel(START, tick=False):
        unit_members_add(target=team, users=[annual], actor=platform_admin)
        assignment = assignment_link(target=team, course=course, actor=platform_admin)
        assignment_apply(target=team, course=course, actor=platform_admin)
        Assignment.objects.filter(pk=assignment.pk).update(recur_months=12)
        _enroll(course, ["lapsed", "quitter", "open"])
        Enrollment.objects.filter(course=course).exclude(user__username="open").update(access_until=START.replace(year=2027))
    with time_machine.travel(START + datetime.timedelta(days=40), tick=False):
        enrollment_batch_update(course=course, identifiers=["quitter"], action="unenroll", auto_enroll=False,
                                email_students=False, actor=None)
    for year in (2027, 2028, 2029):
        with time_machine.travel(START.replace(year=year), tick=False):
            expire_enrollments()
    with time_machine.travel(START.replace(year=2029, month=6), tick=False):
        _enroll(course, ["fresh"], period_request(duration_days=30))
    return annual


@pytest.fixture
def periods_course(platform_admin):
    course = CourseFactory(display_name="Annual safety")
    _three_years_of_periods(course, platform_admin)
    EnrollmentFactory(user=UserFactory(username="elsewhere"), access_until=START)  # another course's
    return course


def test_each_period_of_each_person_with_how_and_when_it_ended(periods_course):
    rows = read_csv(produce(periods_course, "periods"))

    year = {y: _utc(START.replace(year=y)) for y in (2026, 2027, 2028, 2029, 2030)}
    fresh_start = START.replace(year=2029, month=6)
    assert rows == [
        ["username", "email", "access_from", "access_until", "ended", "ended_at"],
        ["annual", "annual@example.org", "", year[2027], "renewed", year[2027]],
        ["annual", "annual@example.org", year[2027], year[2028], "renewed", year[2028]],
        ["annual", "annual@example.org", year[2028], year[2029], "renewed", year[2029]],
        ["annual", "annual@example.org", year[2029], year[2030], "current", ""],
        ["fresh", "fresh@example.org", "", _utc(fresh_start + datetime.timedelta(days=30)), "current", ""],
        ["lapsed", "lapsed@example.org", "", year[2027], "expiry", year[2027]],
        ["quitter", "quitter@example.org", "", year[2027], "unenrolled", _utc(START + datetime.timedelta(days=40))],
    ]


def test_an_expired_person_enrolled_again_shows_both_periods(periods_course):
    with time_machine.travel(START.replace(year=2029, month=7), tick=False):
        _enroll(periods_course, ["lapsed"], period_request(duration_days=10))
    rows = [row for row in read_csv(produce(periods_course, "periods")) if row[0] == "lapsed"]
    assert [row[4] for row in rows] == ["expiry", "current"]


def test_a_period_ended_by_unenrolling_stays_once_enrolled_again_with_another(course):
    UserFactory(username="jo", email="jo@example.org")
    first_end, left, back = START + datetime.timedelta(days=90), START + datetime.timedelta(days=20), START + datetime.timedelta(days=60)
    with time_machine.travel(START, tick=False):
        _enroll(course, ["jo"], period_request(access_from=START, access_until=first_end))
    with time_machine.travel(left, tick=False):
        enrollment_batch_update(course=course, identifiers=["jo"], action="unenroll", auto_enroll=False, email_students=False, actor=None)
    with time_machine.travel(back, tick=False):
        _enroll(course, ["jo"], period_request(duration_days=30))
    assert read_csv(produce(course, "periods"))[1:] == [
        ["jo", "jo@example.org", _utc(START), _utc(first_end), "unenrolled", _utc(left)],
        ["jo", "jo@example.org", "", _utc(back + datetime.timedelta(days=30)), "current", ""],
    ]


def test_an_unenroll_that_did_not_record_the_period_is_listed_from_the_enrollment(course):
    # An audit row written before unenrolls recorded the period they ended: the state only.
    left = EnrollmentFactory(course=course, user=UserFactory(username="old", email="old@example.org"), is_active=False, access_until=START)
    EnrollmentAudit.objects.create(course=course, user=left.user, identifier="old", state_before=State.ENROLLED,
                                   state_after=State.UNENROLLED, source=Source.BATCH)
    assert [row[3:5] for row in read_csv(produce(course, "periods"))[1:]] == [[_utc(START), "unenrolled"]]


def test_a_formula_in_a_username_is_neutralised(course):
    EnrollmentFactory(course=course, user=UserFactory(username="=cmd", email="+x@example.org"), access_until=START)
    assert read_csv(produce(course, "periods"))[1][:2] == ["'=cmd", "'+x@example.org"]


def test_the_file_is_named_like_the_others(course):
    when = datetime.datetime(2026, 5, 6, 7, 8, tzinfo=UTC)
    assert report_filename(course=course, kind="periods", when=when) == "Acme_ENR101_periods_2026-05-06-0708.csv"


@pytest.mark.postgresql
def test_by_copy_is_the_row_by_row_file_byte_for_byte(periods_course, monkeypatch, settings):
    settings.TIME_ZONE = "Pacific/Kiritimati"
    EnrollmentFactory(course=periods_course, user=UserFactory(username="@odd", email='say "hi", x'),
                      access_from=START + datetime.timedelta(microseconds=7), access_until=START.replace(year=2031))
    body = assert_same_bytes(periods_course, "periods", monkeypatch)
    assert body.count(b"\r\n") == 9 and b"'@odd" in body and b",renewed," in body and b",unenrolled," in body


@pytest.mark.parametrize("persona", ["other_staff", "learner"])
def test_only_the_course_team_may_ask_for_it(request, client_for, course, persona):
    assert client_for(request.getfixturevalue(persona)).post(request_url(course), {"kind": "periods"}).status_code == 403
    assert not ReportTask.objects.exists()


def test_the_course_team_asks_for_it_from_the_data_download_tab(client_for, course, course_staff):
    client = client_for(course_staff)
    assert "Download periods of access as a CSV" in client.get(f"/courses/{course.key}/instructor/data/").content.decode()
    response = client.post(request_url(course), {"kind": "periods"})
    assert response.status_code == 302
    assert ReportTask.objects.get().kind == "periods"
    assert not EnrollmentAudit.objects.exists()  # asking changes nothing but the task
