"""``undo_decide`` without a database: the state to restore is the first
row's state before, a later change or a state no longer as the operation left
it leaves the person alone, mode and cohort only where recorded, emails only
when asked."""

import datetime
import uuid

from enrollments.models import Notification, State
from enrollments.services.undo_decide import Current, LaterChange, OperationRow, UndoRequest, undo_decide

NOW = datetime.datetime(2026, 5, 1, 12, 0, tzinfo=datetime.UTC)
OP = uuid.UUID(int=1)


def request(**kw):
    return UndoRequest(course_id=1, operation_id=OP, undo_operation_id=uuid.UUID(int=2), actor_id=9, now=NOW, default_mode="audit", **kw)


def row(n, user_id, before, after, identifier=None, **kw):
    key = ("user", user_id) if user_id is not None else ("email", identifier)
    return OperationRow(id=n, created=NOW, key=key, user_id=user_id, identifier=identifier or f"u{user_id}", state_before=before, state_after=after, **kw)


def test_restores_the_first_state_before_and_deletes_what_the_operation_created():
    rows = [row(1, 1, State.NONE, State.ENROLLED), row(2, 2, State.UNENROLLED, State.ENROLLED), row(3, None, State.NONE, State.ALLOWED_AUTO, "a@x.org")]
    current = {("user", 1): Current(State.ENROLLED, "audit", email="u1@x.org"), ("user", 2): Current(State.ENROLLED, "verified"),
               ("email", "a@x.org"): Current(State.ALLOWED_AUTO, email="a@x.org")}
    plan = undo_decide(request=request(), rows=rows, later={}, current=current, cohorts=set())
    assert plan.enrollment_users_to_delete == [1]
    assert [(r["user_id"], r["is_active"], r["mode"]) for r in plan.enrollments_to_upsert] == [(2, False, "verified")]
    assert plan.allowance_keys_to_delete == ["a@x.org"]
    assert [(a["state_before"], a["state_after"], a["undoes"]) for a in plan.audits] == [
        (State.ENROLLED, State.NONE, OP), (State.ENROLLED, State.UNENROLLED, OP), (State.ALLOWED_AUTO, State.NONE, OP),
    ]
    assert plan.messages == []


def test_a_later_change_or_a_state_not_as_left_leaves_the_person_alone():
    rows = [row(1, 1, State.NONE, State.ENROLLED), row(2, 2, State.ENROLLED, State.UNENROLLED), row(3, 3, State.ENROLLED, State.UNENROLLED)]
    later = {("user", 1): LaterChange(id=9, created=NOW, actor="ann", source="batch")}
    current = {("user", 1): Current(State.UNENROLLED), ("user", 2): Current(State.ENROLLED), ("user", 3): Current(State.UNENROLLED)}
    plan = undo_decide(request=request(), rows=rows, later=later, current=current, cohorts=set())
    assert [(p.identifier, p.why) for p in plan.left_alone] == [
        ("u1", "changed since by ann at 2026-05-01 12:00 (Batch page)"),
        ("u2", "changed since, outside the audit trail: not as the operation left it"),
    ]
    assert [r.identifier for r in plan.restores] == ["u3"]


def test_mode_and_cohort_only_where_recorded_and_a_deleted_cohort_is_reported():
    rows = [
        row(1, 1, State.ENROLLED, State.ENROLLED, mode_before="verified", mode_after="audit", cohort_before="A", cohort_after="A"),
        row(2, 2, State.ENROLLED, State.ENROLLED, mode_before="audit", mode_after="audit", cohort_before="Gone", cohort_after="B"),
        row(3, 3, State.UNENROLLED, State.ENROLLED),
    ]
    current = {("user", 1): Current(State.ENROLLED, "audit", "A"), ("user", 2): Current(State.ENROLLED, "audit", "B"),
               ("user", 3): Current(State.ENROLLED, "honor", "C")}
    plan = undo_decide(request=request(), rows=rows, later={}, current=current, cohorts={"A", "B", "C"})
    assert [(r["user_id"], r["mode"]) for r in plan.enrollments_to_upsert] == [(1, "verified"), (3, "honor")]
    assert plan.cohorts == {}
    assert [(p.identifier, p.why) for p in plan.left_alone] == [("u2", "the cohort Gone no longer exists")]


def test_emails_only_when_asked_and_only_for_a_state_restored():
    rows = [row(1, 1, State.ENROLLED, State.UNENROLLED), row(2, None, State.ALLOWED, State.NONE, "b@x.org"),
            row(3, 3, State.ENROLLED, State.ENROLLED, mode_before="verified", mode_after="audit")]
    current = {("user", 1): Current(State.UNENROLLED, "audit", email="u1@x.org", name="Ada"), ("user", 3): Current(State.ENROLLED, "audit", email="u3@x.org")}
    assert undo_decide(request=request(), rows=rows, later={}, current=current, cohorts=set()).messages == []
    plan = undo_decide(request=request(email_students=True), rows=rows, later={}, current=current, cohorts=set())
    assert [(m.kind, m.email, m.name, m.auto_enroll) for m in plan.messages] == [
        (Notification.Kind.ENROLLED, "u1@x.org", "Ada", False), (Notification.Kind.ALLOWED, "b@x.org", "", False),
    ]
    assert len(plan.restores) == 3 and plan.unchanged == 0
