"""Two undos of one operation at once, on PostgreSQL with real threads: one
undoes it, the other is told it was undone already (even for an operation
whose people have no row left to lock, such as a withdrawn invitation); two
Confirms of a large undo at once queue one job."""

import pytest
from django.core.exceptions import ValidationError

from courses.models import CourseRole
from enrollments.models import Allowance, EnrollmentAudit, Source
from enrollments.services import enrollment_batch_update
from enrollments.services import undo as undo_module
from enrollments.services.undo import operation_undo
from tests.factories import AllowanceFactory, CourseFactory, UserFactory
from tests.races import call_together, slowed

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgresql]


def test_two_undos_of_one_operation_at_once_undo_it_once(monkeypatch):
    course = CourseFactory()
    staff = UserFactory()
    CourseRole.objects.create(course=course, user=staff, role=CourseRole.Role.STAFF)
    AllowanceFactory(course=course, email="ann@example.com", auto_enroll=True)
    op = enrollment_batch_update(
        course=course, identifiers=["ann@example.com"], action="unenroll", auto_enroll=False, email_students=False, actor=staff,
    ).operation_id
    # Both undos are held after reading, so both would decide on the same state without the operation's lock.
    seen: list = []
    monkeypatch.setattr(undo_module, "undo_decide", slowed(undo_module.undo_decide, seen, "request"))
    answers = call_together([lambda: operation_undo(course=course, operation_id=op, actor=staff)] * 2)
    assert sorted(type(a).__name__ for a in answers) == ["UndoPreview", "ValidationError"]
    refused = next(a for a in answers if isinstance(a, ValidationError))
    assert "undone already" in refused.messages[0]
    assert EnrollmentAudit.objects.filter(course=course, source=Source.UNDO).count() == 1
    assert list(Allowance.objects.filter(course=course).values_list("email_key", "auto_enroll")) == [("ann@example.com", True)]


def test_two_confirms_of_a_large_undo_at_once_queue_one_job(monkeypatch, settings):
    from enrollments.models import UndoJob
    from enrollments.services.undo import undo_start

    settings.ENROLLMENT_SYNC_LIMIT = 1
    course = CourseFactory()
    staff = UserFactory()
    CourseRole.objects.create(course=course, user=staff, role=CourseRole.Role.STAFF)
    users = UserFactory.create_batch(3)
    op = enrollment_batch_update(
        course=course, identifiers=[u.username for u in users], action="enroll", auto_enroll=False, email_students=False, actor=staff,
    ).operation_id
    # Both are held before deciding whether the operation may be undone, so both would queue a job without the operation's lock.
    seen: list = []
    monkeypatch.setattr(undo_module, "_refusal", slowed(undo_module._refusal, seen, "operation_id"))
    answers = call_together([lambda: undo_start(course=course, operation_id=op, actor=staff)] * 2)
    assert sorted(type(a).__name__ for a in answers) == ["UndoJob", "ValidationError"]
    refused = next(a for a in answers if isinstance(a, ValidationError))
    # Undone already: the tests' eager worker runs the job when the first Confirm commits.
    assert "undone already" in refused.messages[0]
    assert UndoJob.objects.filter(course=course, operation_id=op).count() == 1
    assert EnrollmentAudit.objects.filter(course=course, source=Source.UNDO).count() == 3
