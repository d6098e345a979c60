"""Undo of an operation (``operation_undo``, ``undo_preview``): the exact prior
rows come back after each kind of operation, an undo is undone in turn, a
person changed since is left alone and reported, emails only when asked, and
a fixed number of queries whatever the operation's size."""

import datetime

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from courses.models import CohortMembership
from enrollments.models import Allowance, Enrollment, EnrollmentAudit, Notification, Source, State
from enrollments.services import RosterAction, enrollment_batch_update, roster_apply
from enrollments.services.undo import operation_undo, undo_preview
from tests.factories import AllowanceFactory, CohortFactory, EnrollmentFactory, UserFactory

pytestmark = pytest.mark.django_db


def rows(course):
    """The course's enrollment, invitation and cohort rows as undo must restore them."""
    return (
        sorted(Enrollment.objects.filter(course=course).values_list("user__username", "is_active", "mode")),
        sorted(Allowance.objects.filter(course=course).values_list("email_key", "auto_enroll")),
        sorted(CohortMembership.objects.filter(course=course).values_list("user__username", "cohort__name")),
    )


def batch(course, actor, identifiers, action="enroll", **kw):
    options = {"auto_enroll": True, "email_students": False, **kw}
    return enrollment_batch_update(course=course, identifiers=identifiers, action=action, actor=actor, **options).operation_id


def people(course):
    """kim enrolled (verified, in cohort A), lea unenrolled, max no enrollment, an invitation without auto enroll."""
    cohort = CohortFactory(course=course, name="A")
    kim = EnrollmentFactory(course=course, user=UserFactory(username="kim", email="kim@example.com"), mode="verified")
    CohortMembership.objects.create(cohort=cohort, course=course, user=kim.user)
    EnrollmentFactory(course=course, user=UserFactory(username="lea", email="lea@example.com"), is_active=False, mode="verified")
    UserFactory(username="max", email="max@example.com")
    AllowanceFactory(course=course, email="Ann@Example.com", auto_enroll=False)
    return cohort


@pytest.mark.parametrize("action,auto_enroll", [("enroll", True), ("enroll", False), ("unenroll", True)])
def test_undo_of_a_batch_restores_the_exact_prior_rows(course, course_staff, action, auto_enroll):
    people(course)
    before = rows(course)
    op = batch(course, course_staff, ["kim", "lea", "max", "ann@example.com", "new@example.com", "nobody"], action=action, auto_enroll=auto_enroll)
    assert rows(course) != before
    undone = operation_undo(course=course, operation_id=op, actor=course_staff)
    assert rows(course) == before
    assert undone.plan.left_alone == []
    audits = EnrollmentAudit.objects.filter(operation_id=undone.undo_operation_id)
    assert {a.source for a in audits} == {Source.UNDO} and {a.undoes for a in audits} == {op}
    assert {a.actor for a in audits} == {course_staff}
    assert audits.count() == EnrollmentAudit.objects.filter(operation_id=op).count()


def test_undo_of_a_re_enroll_keeps_the_row_and_its_mode(course, course_staff):
    people(course)
    lea = Enrollment.objects.get(user__username="lea")
    op = batch(course, course_staff, ["lea"])
    operation_undo(course=course, operation_id=op, actor=course_staff)
    lea_after = Enrollment.objects.get(user__username="lea")
    assert (lea_after.pk, lea_after.is_active, lea_after.mode, lea_after.created) == (lea.pk, False, "verified", lea.created)


@pytest.mark.parametrize("action", [RosterAction.CHANGE_MODE, RosterAction.MOVE_COHORT])
def test_undo_of_a_mode_change_or_a_cohort_move(course, course_staff, action):
    people(course)
    b = CohortFactory(course=course, name="B")
    EnrollmentFactory(course=course, user=UserFactory(username="zoe"), mode="audit")
    before = rows(course)
    ids = list(Enrollment.objects.filter(course=course, is_active=True).values_list("pk", flat=True))
    op = roster_apply(actor=course_staff, course=course, action=action, enrollment_ids=ids, mode="audit", cohort=b, email_students=False).operation_id
    assert rows(course) != before
    operation_undo(course=course, operation_id=op, actor=course_staff)
    assert rows(course) == before


def test_an_earlier_operation_on_the_same_people_waits_for_the_later_one(course, course_staff):
    people(course)
    ids = list(Enrollment.objects.filter(course=course, is_active=True).values_list("pk", flat=True))
    mode_op = roster_apply(actor=course_staff, course=course, action=RosterAction.CHANGE_MODE, enrollment_ids=ids, mode="audit", email_students=False).operation_id
    roster_apply(actor=course_staff, course=course, action=RosterAction.MOVE_COHORT, enrollment_ids=ids, cohort=None, email_students=False)
    undone = operation_undo(course=course, operation_id=mode_op, actor=course_staff)
    assert [(p.identifier, p.why[:31]) for p in undone.plan.left_alone] == [("kim", "changed since by coursestaff at")]
    assert Enrollment.objects.get(user__username="kim").mode == "audit"


def test_undo_of_an_undo_puts_the_operation_back(course, course_staff):
    people(course)
    op = batch(course, course_staff, ["kim", "lea", "ann@example.com"], action="unenroll")
    after_op = rows(course)
    undo = operation_undo(course=course, operation_id=op, actor=course_staff)
    redo = operation_undo(course=course, operation_id=undo.undo_operation_id, actor=course_staff)
    assert rows(course) == after_op
    assert sorted(r.identifier for r in redo.plan.restores) == ["ann@example.com", "kim"]  # lea was unenrolled already


def test_a_person_changed_since_is_left_alone_and_reported(course, course_staff, course_admin):
    people(course)
    op = batch(course, course_staff, ["max", "new@example.com"])
    batch(course, course_admin, ["max"], action="unenroll")  # someone else, later
    preview = undo_preview(course=course, operation_id=op)
    assert [(p.identifier, p.why[:31]) for p in preview.plan.left_alone] == [("max", "changed since by courseadmin at")]
    operation_undo(course=course, operation_id=op, actor=course_staff)
    assert Enrollment.objects.get(user__username="max").is_active is False  # as the later change left it
    assert not Allowance.objects.filter(email_key="new@example.com").exists()  # the untouched invitation undone


def test_a_change_outside_the_audit_trail_is_left_alone(course, course_staff):
    people(course)
    op = batch(course, course_staff, ["max"])
    Enrollment.objects.filter(user__username="max").update(is_active=False)
    undone = operation_undo(course=course, operation_id=op, actor=course_staff)
    assert [p.identifier for p in undone.plan.left_alone] == ["max"]
    assert Enrollment.objects.filter(user__username="max").exists()


def test_preview_writes_nothing(course, course_staff):
    people(course)
    op = batch(course, course_staff, ["kim", "lea", "ann@example.com"], action="unenroll")
    snapshot, audits = rows(course), EnrollmentAudit.objects.count()
    preview = undo_preview(course=course, operation_id=op)
    assert sorted(r.identifier for r in preview.plan.restores) == ["ann@example.com", "kim"]
    assert (preview.changes, preview.source, preview.refusal) == (2, Source.BATCH, "")
    assert (rows(course), EnrollmentAudit.objects.count()) == (snapshot, audits)


def test_no_emails_unless_asked(course, course_staff, django_capture_on_commit_callbacks):
    people(course)
    op = batch(course, course_staff, ["kim", "ann@example.com", "max"], action="unenroll")
    with django_capture_on_commit_callbacks(execute=True):
        undo = operation_undo(course=course, operation_id=op, actor=course_staff)
    assert not Notification.objects.filter(operation_id=undo.undo_operation_id).exists() and mail.outbox == []
    with django_capture_on_commit_callbacks(execute=True):
        redo = operation_undo(course=course, operation_id=undo.undo_operation_id, actor=course_staff, email_students=True)
    assert sorted(Notification.objects.filter(operation_id=redo.undo_operation_id).values_list("recipient", "kind")) == [
        ("ann@example.com", Notification.Kind.ALLOWANCE_REMOVED), ("kim@example.com", Notification.Kind.UNENROLLED),
    ]
    assert len(mail.outbox) == 2 and all("undone" in m.body for m in mail.outbox)


def test_undone_once_old_or_others_refused(course, other_course, course_staff, other_staff, settings):
    people(course)
    op = batch(course, course_staff, ["max"])
    assert undo_preview(course=other_course, operation_id=op) is None
    with pytest.raises(PermissionDenied):
        operation_undo(course=course, operation_id=op, actor=other_staff)
    operation_undo(course=course, operation_id=op, actor=course_staff)
    with pytest.raises(ValidationError, match="undone already, by coursestaff"):
        operation_undo(course=course, operation_id=op, actor=course_staff)

    old = batch(course, course_staff, ["kim"], action="unenroll")
    EnrollmentAudit.objects.filter(operation_id=old).values_list("pk", flat=True)
    settings.UNDO_DAYS = 0
    assert "more than 0 days old" in undo_preview(course=course, operation_id=old).refusal
    with pytest.raises(ValidationError):
        operation_undo(course=course, operation_id=old, actor=course_staff)
    assert Enrollment.objects.get(user__username="kim").is_active is False


def _undo_queries(course, actor, n):
    users = UserFactory.create_batch(n)
    op = batch(course, actor, [u.username for u in users] + [f"x{i}@example.com" for i in range(n)])
    with CaptureQueriesContext(connection) as queries:
        undone = operation_undo(course=course, operation_id=op, actor=actor, email_students=True)
    assert len(undone.plan.restores) == 2 * n
    return len(queries)


@pytest.mark.postgresql
def test_queries_do_not_grow_with_the_operation(course, course_staff, django_capture_on_commit_callbacks):
    assert _undo_queries(course, course_staff, 10) == _undo_queries(course, course_staff, 5_000)


def test_the_state_names_of_undo_audit_rows(course, course_staff):
    op = batch(course, course_staff, ["new@example.com"], auto_enroll=False)
    undo = operation_undo(course=course, operation_id=op, actor=course_staff)
    audit = EnrollmentAudit.objects.get(operation_id=undo.undo_operation_id)
    assert (audit.state_before, audit.state_after, audit.reason) == (State.ALLOWED, State.NONE, f"Undo of operation {op}")
    assert undo.first <= datetime.datetime.now(datetime.UTC)
