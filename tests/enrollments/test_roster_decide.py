"""The learners table's decide step, without a database: what each action
changes, audits and mails for each locked row."""

import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from enrollments.models import Notification, RosterAction, State
from enrollments.services.roster_decide import RosterRequest, RosterRow, roster_decide

NOW = datetime(2026, 1, 5, tzinfo=UTC)
ROW = RosterRow(
    enrollment_id=7, user_id=3, username="kim", email="Kim@example.com", display_name="Kim Lee", account_active=True,
    is_active=True, mode="audit", cohort="", has_allowance=False,
)


def request(action, **kw):
    values = {
        "action": action, "course_id": 1, "mode": "", "cohort_id": None, "cohort_name": "", "reason": "why",
        "email_students": True, "source": "roster", "operation_id": uuid.UUID(int=1), "actor_id": 9, "now": NOW,
    }
    return RosterRequest(**{**values, **kw})


def test_unenroll_deactivates_removes_the_allowance_audits_and_mails():
    changes = roster_decide(request=request(RosterAction.UNENROLL), rows=[replace(ROW, has_allowance=True), replace(ROW, enrollment_id=8, is_active=False)])
    assert (changes.changed, changes.unchanged, changes.refused) == (1, 1, [])
    assert changes.batch.enrollments_to_deactivate == [7]
    assert changes.batch.allowance_keys_to_delete == ["kim@example.com"]
    [audit] = changes.batch.audits
    assert (audit["state_before"], audit["state_after"], audit["identifier"], audit["reason"], audit["actor_id"]) == (
        State.ENROLLED, State.UNENROLLED, "kim", "why", 9,
    )
    assert [(m.kind, m.email, m.name) for m in changes.batch.messages] == [(Notification.Kind.UNENROLLED, "Kim@example.com", "Kim Lee")]


def test_without_email_students_nothing_is_mailed():
    changes = roster_decide(request=request(RosterAction.UNENROLL, email_students=False), rows=[ROW])
    assert changes.changed == 1 and changes.batch.messages == []


def test_enroll_again_reactivates_keeping_the_mode():
    changes = roster_decide(request=request(RosterAction.ENROLL_AGAIN), rows=[replace(ROW, is_active=False, mode="verified"), replace(ROW, enrollment_id=8)])
    assert (changes.changed, changes.unchanged) == (1, 1)
    [row] = changes.batch.enrollments_to_upsert
    assert (row["user_id"], row["is_active"], row["mode"]) == (3, True, "verified")
    assert changes.batch.audits[0]["state_before"] == State.UNENROLLED and changes.batch.audits[0]["state_after"] == State.ENROLLED
    assert [m.kind for m in changes.batch.messages] == [Notification.Kind.ENROLLED]


def test_enroll_again_refuses_a_deactivated_account():
    changes = roster_decide(request=request(RosterAction.ENROLL_AGAIN), rows=[replace(ROW, is_active=False, account_active=False)])
    assert changes.refused == ["kim: the account is deactivated, so it cannot be enrolled again"]
    assert changes.changed == 0 and not changes.batch.writes_anything


@pytest.mark.parametrize("is_active", [True, False])
def test_change_mode_keeps_the_state_and_records_both_modes(is_active):
    changes = roster_decide(request=request(RosterAction.CHANGE_MODE, mode="verified"), rows=[replace(ROW, is_active=is_active), replace(ROW, enrollment_id=8, mode="verified")])
    assert changes.mode_ids == [7] and changes.unchanged == 1
    [audit] = changes.batch.audits
    state = State.ENROLLED if is_active else State.UNENROLLED
    assert (audit["state_before"], audit["state_after"], audit["mode_before"], audit["mode_after"]) == (state, state, "audit", "verified")
    assert changes.batch.messages == [] and changes.batch.enrollments_to_deactivate == []


def test_move_cohort_records_both_names_and_leaves_those_already_there():
    rows = [replace(ROW, cohort="Red"), replace(ROW, enrollment_id=8, user_id=4, cohort="Blue"), replace(ROW, enrollment_id=9, user_id=5)]
    changes = roster_decide(request=request(RosterAction.MOVE_COHORT, cohort_id=2, cohort_name="Blue"), rows=rows)
    assert changes.cohort_user_ids == [3, 5] and changes.unchanged == 1
    assert [(a["cohort_before"], a["cohort_after"]) for a in changes.batch.audits] == [("Red", "Blue"), ("", "Blue")]
    to_none = roster_decide(request=request(RosterAction.MOVE_COHORT), rows=rows)
    assert to_none.cohort_user_ids == [3, 4] and to_none.unchanged == 1
