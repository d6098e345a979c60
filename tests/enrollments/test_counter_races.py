"""The counters under concurrent writers, on PostgreSQL with real threads.

Self-enrollment locks the course row, then writes the learner's enrollment,
whose trigger then locks the course's counter rows; a batch locks enrollment
rows, then the counters at the end of its write statement, and never the
course row. No order is reversed, so no new deadlock: every writer finishes,
the cap holds for self-enrollment, and the counters equal a fresh count."""

import pytest
from django.contrib.auth import get_user_model

from enrollments.models import Enrollment
from enrollments.selectors import active_count
from enrollments.services import SelfEnrollmentRefused, enrollment_batch_update, enrollment_self_enroll

from ..factories import CourseFactory, UserFactory
from ..races import call_together
from .test_counters import drift

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgresql,  # real concurrency needs a server database
]

CAP = 8
LEARNERS = 12


def test_self_enrollments_and_batches_on_one_capped_course_neither_deadlock_nor_pass_the_cap():
    course = CourseFactory(self_enrollment=True, max_enrollments=CAP)
    admin = UserFactory(is_staff=True, is_superuser=True)
    learners = get_user_model().objects.bulk_create(UserFactory.build_batch(LEARNERS))
    others = get_user_model().objects.bulk_create(UserFactory.build_batch(60))
    # Two batches overlapping each other and the self-enrolling learners: the team may enroll past the cap.
    first = [u.username for u in others[:40] + learners[:4]]
    second = [u.username for u in others[20:] + learners[2:6]]

    def batch(names):
        return lambda: enrollment_batch_update(course=course, identifiers=names, action="enroll", auto_enroll=False, email_students=False, actor=admin)

    def self_enroll(user):
        def call():
            try:
                return enrollment_self_enroll(user=user, course=course)
            except SelfEnrollmentRefused as refused:
                return refused
        return call

    answers = call_together([batch(first), *(self_enroll(u) for u in learners), batch(second)])

    unexpected = [a for a in answers if isinstance(a, Exception) and not isinstance(a, SelfEnrollmentRefused)]
    assert unexpected == [], "\n".join(map(str, unexpected[:3]))  # a deadlock would surface here, as an OperationalError
    self_enrolled = [a for a in answers[1:-1] if isinstance(a, Enrollment)]
    assert len(self_enrolled) <= CAP
    assert active_count(course=course) == Enrollment.objects.filter(course=course, is_active=True).count() >= 60
    assert drift() == ([], [], [])
