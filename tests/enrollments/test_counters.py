"""The enrollment counters (per course and mode, per course and day, the ends
per day): kept by database triggers in the transaction of every change, equal
to a fresh count (the ends: to the audit trail) after any sequence of the ways
in and out; the consistency check finds and fixes drift."""

import datetime as dt
import io

import openpyxl
import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from codes.services import RedemptionError, code_batch_generate, code_redeem
from enrollments import counters
from enrollments.models import Enrollment, EnrollmentAudit, EnrollmentCount, EnrollmentDayCount, RosterAction
from enrollments.selectors import active_count, enrollment_counts
from enrollments.services import (
    SelfEnrollmentRefused,
    enrollment_batch_update,
    enrollment_self_enroll,
    enrollment_self_unenroll,
    roster_apply,
)
from enrollments.services.undo import operation_undo
from enrollments.tasks import check_enrollment_counts
from organisations.models import EnrollmentRule
from organisations.services import import_check, import_run
from organisations.services.enrollment_rules import rule_apply, rule_save
from tests.factories import CourseFactory, EnrollmentFactory, UserFactory

from ..organisations.factories import OrgUnitFactory

pytestmark = pytest.mark.django_db


def drift():
    """Fresh count minus counters, per (course, mode), per (course, day) and (the
    ends, from the audit trail) per (course, day): empty when they agree."""
    modes, days = counters.drift_sql(connection.vendor, "UTC")
    with connection.cursor() as cursor:
        cursor.execute(modes)
        mode_rows = cursor.fetchall()
        cursor.execute(days)
        day_rows = cursor.fetchall()
        cursor.execute(counters.ended_drift_sql(connection.vendor, "UTC"))
        ended_rows = cursor.fetchall()
    return mode_rows, day_rows, ended_rows


def counted_by_hand(course):
    """The counters' answers from the enrollment rows, by the ORM (independent of the triggers' SQL)."""
    rows = Enrollment.objects.filter(course=course)
    per_mode = dict(rows.filter(is_active=True).values_list("mode").annotate(n=Count("id")).order_by())
    per_day = {
        (d["day"], d["new"], d["active"])
        for d in rows.annotate(day=TruncDate("created")).values("day").annotate(new=Count("id"), active=Count("id", filter=Q(is_active=True))).order_by()
    }
    ends = EnrollmentAudit.objects.filter(course=course, state_before="enrolled", state_after="unenrolled")
    ended = set(ends.annotate(day=TruncDate("created")).values_list("day").annotate(n=Count("id")).order_by())
    return sum(per_mode.values()), per_mode, rows.count(), per_day, ended


def counters_of(course):
    counts = enrollment_counts(course=course)
    per_day = set(EnrollmentDayCount.objects.filter(course=course).exclude(new=0).values_list("day", "new", "active"))
    every_row = sum(a + i for a, i in EnrollmentCount.objects.filter(course=course).values_list("active", "inactive"))
    ended = set(EnrollmentDayCount.objects.filter(course=course).exclude(ended=0).values_list("day", "ended"))
    return counts["total"], {m: n for m, n in counts["modes"].items() if n}, every_row, per_day, ended


def ended_today(course) -> int:
    return EnrollmentDayCount.objects.filter(course=course, day=timezone.localdate()).values_list("ended", flat=True).first() or 0


def rows_part(counts):
    """The counts kept from the enrollment rows (all but the ends, which raw statements leave out of the audit)."""
    return counts[:4]


def test_every_kind_of_statement_moves_the_counters():
    course, other = CourseFactory(), CourseFactory()
    first = EnrollmentFactory(course=course)
    EnrollmentFactory(course=course, is_active=False, mode="verified")
    EnrollmentFactory(course=other)
    assert rows_part(counters_of(course)) == rows_part(counted_by_hand(course))
    Enrollment.objects.filter(pk=first.pk).update(mode="verified")  # each counted column alone
    assert rows_part(counters_of(course)) == rows_part(counted_by_hand(course))
    Enrollment.objects.filter(pk=first.pk).update(is_active=False)
    Enrollment.objects.filter(course=course).update(mode="verified", is_active=True)
    assert rows_part(counters_of(course)) == rows_part(counted_by_hand(course))
    assert active_count(course=course) == 2
    Enrollment.objects.filter(course=course).update(course=other)  # rows moving between courses
    assert rows_part(counters_of(course)) == rows_part(counted_by_hand(course)) and rows_part(counters_of(other)) == rows_part(counted_by_hand(other))
    # A bulk path that bypasses Django (raw SQL) is counted too.
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO enrollments_enrollment (user_id, course_id, is_active, mode, source, created, updated)"
            " SELECT id, %s, %s, 'audit', 'batch', %s, %s FROM accounts_user WHERE id = %s",
            [course.pk, True, first.created, first.created, UserFactory().pk],
        )
    assert rows_part(counters_of(course)) == rows_part(counted_by_hand(course)) == (1, {"audit": 1}, 1, {(first.created.date(), 1, 1)})
    first.user.delete()  # cascades to the user's enrollments
    assert drift()[:2] == ([], [])
    other.delete()  # the course's counters go with it
    assert not EnrollmentCount.objects.filter(course_id=other.pk).exists()
    assert drift()[:2] == ([], [])


def test_an_end_is_counted_on_the_day_it_happens_and_stays_counted():
    course, other = CourseFactory(), CourseFactory()
    old = EnrollmentFactory(course=course, created=timezone.now() - dt.timedelta(days=40))
    EnrollmentFactory(course=course, is_active=False)  # made inactive: not an end
    assert ended_today(course) == 0
    Enrollment.objects.filter(course=course).update(is_active=False)  # one of the two was active
    assert ended_today(course) == 1
    assert EnrollmentDayCount.objects.get(course=course, day=old.created.date()).ended == 0  # by the day it ended, not it began
    Enrollment.objects.filter(pk=old.pk).update(is_active=True)  # reactivated: the end stays counted
    assert ended_today(course) == 1
    Enrollment.objects.filter(pk=old.pk).update(is_active=False, course=other)  # ended while moved: in the course it left
    assert (ended_today(course), ended_today(other)) == (2, 0)
    Enrollment.objects.filter(pk=old.pk).delete()  # a delete ends nothing, and takes no end back
    assert ended_today(course) == 2
    Enrollment.objects.filter(course=course).update(mode="verified")  # inactive to inactive
    assert ended_today(course) == 2
    # Raw statements write no audit row: the check sees ends the audit trail does not.
    assert drift()[2] == [(course.pk, timezone.localdate(), -2)]


def test_a_change_that_touches_no_counted_column_writes_no_counter():
    enrollment = EnrollmentFactory()
    before = list(EnrollmentCount.objects.values_list("id", "active", "inactive"))
    Enrollment.objects.filter(pk=enrollment.pk).update(source="api")
    assert list(EnrollmentCount.objects.values_list("id", "active", "inactive")) == before


def test_the_check_reports_drift_fixes_it_on_request_and_the_task_reports_it(caplog):
    course = CourseFactory()
    EnrollmentFactory.create_batch(3, course=course)
    call_command("enrollment_counts_check")  # agrees: no error
    assert check_enrollment_counts() == "The enrollment counters agree with a fresh count."
    enrollment_self_unenroll(user=Enrollment.objects.filter(course=course).first().user, course=course)  # audited
    assert check_enrollment_counts() == "The enrollment counters agree with a fresh count."
    EnrollmentCount.objects.filter(course=course).update(active=7)
    EnrollmentDayCount.objects.filter(course=course).delete()

    with pytest.raises(CommandError, match="drifted in 1 course"):
        call_command("enrollment_counts_check", stdout=(out := io.StringIO()))
    assert f"course {course.pk} day {timezone.localdate()}: ended +1 (by the audit trail)" in out.getvalue()
    assert "drifted in 1 course" in caplog.text
    assert check_enrollment_counts().endswith("Not fixed (run with --fix).")
    assert enrollment_counts(course=course)["total"] == 7  # reporting changed nothing
    assert not EnrollmentDayCount.objects.filter(course=course).exists()

    call_command("enrollment_counts_check", "--fix")
    assert drift() == ([], [], [])
    assert ended_today(course) == 1
    assert counters_of(course) == counted_by_hand(course)
    call_command("enrollment_counts_check")


# --- every way in and out, in random order ---------------------------------------------------

def xlsx(rows) -> bytes:
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("Import")
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


PEOPLE = 5
OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from([
            "batch_enroll", "batch_unenroll", "self_enroll", "self_unenroll", "code", "rule",
            "import", "undo", "roster_unenroll", "roster_enroll_again", "mode_change",
        ]),
        st.integers(0, PEOPLE - 1),  # who (or, for a batch, from whom on)
        st.integers(0, 1),  # which course
    ),
    min_size=1, max_size=10,
)


@hypothesis_settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(operations=OPERATIONS)
def test_counters_equal_a_fresh_count_after_any_sequence_of_changes(operations):
    # Each example in a savepoint rolled back at its end: every example starts empty.
    with transaction.atomic():
        admin = UserFactory(is_staff=True, is_superuser=True)
        department = OrgUnitFactory()
        people = [UserFactory(department=department if i % 2 else None) for i in range(PEOPLE)]
        # Course 0 capped (self-enrollment and codes are refused past it), course 1 not.
        courses = [CourseFactory(self_enrollment=True, max_enrollments=3), CourseFactory(self_enrollment=True)]
        rule = rule_save(rule=EnrollmentRule(name="Odd ones", department=department, retroactive=True), courses=[courses[0]], actor=admin)
        codes = list(code_batch_generate(actor=admin, courses=courses, count=PEOPLE, max_uses=1).codes.values_list("code", flat=True))
        for step, (op, who, which) in enumerate(operations):
            course, person = courses[which], people[who]
            names = [p.username for p in people[who:]]
            if op in ("batch_enroll", "batch_unenroll"):
                enrollment_batch_update(
                    course=course, identifiers=names, action="unenroll" if op == "batch_unenroll" else "enroll",
                    auto_enroll=False, email_students=False, actor=admin,
                )
            elif op == "import":  # an xlsx file, checked and run as the organisation import does
                rows = [["email", course.key], *([p.email, "x"] for p in people[who:])]
                import_run(org_import=import_check(name="people.xlsx", data=xlsx(rows), actor=admin), actor=admin)
            elif op == "self_enroll":
                try:
                    enrollment_self_enroll(user=person, course=course)
                except SelfEnrollmentRefused:
                    pass
            elif op == "self_unenroll":
                enrollment_self_unenroll(user=person, course=course)
            elif op == "code":
                try:
                    code_redeem(code=codes[who], user=person)
                except RedemptionError:
                    pass
            elif op == "rule":
                rule_apply(rule=rule, actor=admin)
            elif op == "undo":
                last = EnrollmentAudit.objects.filter(course=course, operation_id__isnull=False).order_by("-created", "-id").first()
                if last is not None:
                    operation_undo(course=course, operation_id=last.operation_id, actor=admin)
            else:
                action = {"roster_unenroll": RosterAction.UNENROLL, "roster_enroll_again": RosterAction.ENROLL_AGAIN}.get(op, RosterAction.CHANGE_MODE)
                ids = list(Enrollment.objects.filter(course=course, user__in=people[who:]).values_list("id", flat=True))
                if ids:
                    roster_apply(actor=admin, course=course, action=action, enrollment_ids=ids, mode=("verified", "audit")[step % 2], email_students=False)
            for c in courses:
                assert counters_of(c) == counted_by_hand(c), (op, who, which)
        assert drift() == ([], [], [])
        transaction.set_rollback(True)
