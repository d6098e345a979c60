"""A batch's preview: what it shows is what the confirmed batch does, and it writes nothing."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from enrollments.models import Allowance, Enrollment, EnrollmentAudit, Notification, Outcome
from enrollments.services import enrollment_batch_update
from enrollments.services.batch_preview import PreviewStale, enrollment_batch_preview, preview_differences
from tests.factories import AllowanceFactory, CourseFactory, CourseRoleFactory, EnrollmentFactory, UserFactory

pytestmark = pytest.mark.django_db

TABLES = (Enrollment, Allowance, EnrollmentAudit, Notification)


def row_counts():
    return [model.objects.count() for model in TABLES]


def preview(course, identifiers, action="enroll", auto_enroll=True, email_students=True):
    return enrollment_batch_preview(
        course=course, identifiers=identifiers, action=action, auto_enroll=auto_enroll, email_students=email_students,
    )


def confirm(course, shown, identifiers, actor=None):
    return enrollment_batch_update(
        course=course, identifiers=identifiers, action=shown.action, auto_enroll=shown.auto_enroll,
        email_students=shown.email_students, actor=actor, expected_fingerprint=shown.fingerprint,
    )


# Starting states of the five accounts and two unknown addresses the random lists draw from.
ACCOUNT_STATES = st.sampled_from(["none", "active", "inactive", "active+allowance", "allowance"])
ADDRESS_STATES = st.sampled_from(["none", "allowed", "allowed_auto"])
TOKENS = [
    *(f"pv{i}" for i in range(5)), *(f"PV{i}@example.com" for i in range(5)),
    "new0@example.com", "NEW1@example.com", "ghost", "bad@", "new0@EXAMPLE.com",
]


@hypothesis_settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(
    accounts=st.lists(ACCOUNT_STATES, min_size=5, max_size=5),
    addresses=st.lists(ADDRESS_STATES, min_size=2, max_size=2),
    identifiers=st.lists(st.sampled_from(TOKENS), min_size=1, max_size=12),
    action=st.sampled_from(["enroll", "unenroll"]),
    auto_enroll=st.booleans(),
    email_students=st.booleans(),
)
def test_preview_equals_what_the_confirmed_batch_does(accounts, addresses, identifiers, action, auto_enroll, email_students):
    # Each example in a savepoint rolled back at its end: every example starts from its own states.
    with transaction.atomic():
        course = CourseFactory()
        for i, state in enumerate(accounts):
            user = UserFactory(username=f"pv{i}", email=f"pv{i}@example.com")
            if state in ("active", "inactive", "active+allowance"):
                EnrollmentFactory(user=user, course=course, is_active=state != "inactive")
            if "allowance" in state:
                AllowanceFactory(course=course, email=user.email, auto_enroll=bool(i % 2))
        for i, state in enumerate(addresses):
            if state != "none":
                AllowanceFactory(course=course, email=f"new{i}@example.com", auto_enroll=state == "allowed_auto")
        CourseRoleFactory(course=course, user=UserFactory(username="pv-team-member-holder"))
        before = row_counts()

        shown = preview(course, identifiers, action=action, auto_enroll=auto_enroll, email_students=email_students)

        assert row_counts() == before, "a preview writes nothing"
        done = confirm(course, shown, identifiers)
        assert [(r.identifier, r.outcome) for r in done.results] == [(r.identifier, r.outcome) for r in shown.results]
        assert [(r.before, r.after) for r in done.results] == [(r.before, r.after) for r in shown.results]
        assert Notification.objects.count() - before[3] == shown.emails
        assert EnrollmentAudit.objects.count() - before[2] == shown.changes
        transaction.set_rollback(True)


def test_preview_counts_every_outcome_and_the_emails_and_writes_nothing():
    course = CourseFactory()
    enrolled = EnrollmentFactory(course=course, user=UserFactory(username="ada")).user
    former = EnrollmentFactory(course=course, user=UserFactory(username="bob"), is_active=False).user
    UserFactory(username="cy")
    AllowanceFactory(course=course, email="invited@example.com", auto_enroll=True)
    before = row_counts()

    shown = preview(course, "ada bob cy invited@example.com new@example.com ghost bad@ ADA@example.com")

    assert row_counts() == before
    assert shown.summary == {
        Outcome.ALREADY_ENROLLED: 1, Outcome.REACTIVATED: 1, Outcome.ENROLLED: 1, Outcome.ALREADY_ALLOWED: 1,
        Outcome.ALLOWED_AUTO: 1, Outcome.NO_SUCH_USER: 1, Outcome.INVALID_EMAIL: 1, Outcome.DUPLICATE: 1,
    }
    assert shown.emails == 3  # bob, cy, new@: the people it changes
    assert [g.label for g in shown.groups][:2] == ["will enroll", "will enroll again"]
    assert {g.label: g.count for g in shown.groups}["already enrolled"] == 1
    assert enrolled.enrollments.get().is_active and not former.enrollments.get().is_active


def test_unenrolling_team_members_is_called_out():
    course = CourseFactory()
    staff = CourseRoleFactory(course=course, user=UserFactory(username="tess")).user
    EnrollmentFactory(course=course, user=staff)
    EnrollmentFactory(course=course, user=UserFactory(username="lea"))

    shown = preview(course, "tess lea", action="unenroll")

    assert shown.team_unenrolled == ["tess"]
    assert preview(course, "tess lea", action="enroll").team_unenrolled == []


def test_a_course_changed_since_the_preview_is_not_applied_and_the_new_preview_says_what_changed():
    course = CourseFactory()
    UserFactory(username="ada")
    shown = preview(course, "ada new@example.com")
    EnrollmentFactory(course=course, user__username="bob")  # unrelated: changes nothing the preview showed
    ada = UserFactory._meta.model.objects.get(username="ada")
    EnrollmentFactory(course=course, user=ada)  # ada enrolled by someone else meanwhile
    before = row_counts()

    with pytest.raises(PreviewStale) as stale:
        confirm(course, shown, "ada new@example.com")

    assert row_counts() == before, "nothing is written"
    fresh = stale.value.preview
    assert fresh.fingerprint != shown.fingerprint
    assert preview_differences([(r.identifier, str(r.outcome)) for r in shown.results], fresh) == [
        ("ada", "will enroll", "already enrolled"),
    ]
    # The new preview, confirmed, applies.
    assert [r.outcome for r in confirm(course, fresh, "ada new@example.com").results] == [Outcome.ALREADY_ENROLLED, Outcome.ALLOWED_AUTO]


def test_an_unchanged_course_applies_the_preview_as_shown():
    course = CourseFactory()
    UserFactory(username="ada")
    shown = preview(course, "ada")
    assert [r.outcome for r in confirm(course, shown, "ada").results] == [Outcome.ENROLLED]
    assert Enrollment.objects.filter(course=course, is_active=True).count() == 1


def test_preview_queries_do_not_grow_with_the_list():
    course = CourseFactory()
    users = UserFactory.create_batch(40)
    for user in users[:20]:
        EnrollmentFactory(course=course, user=user)
    counts = []
    for size in (4, 40):
        with CaptureQueriesContext(connection) as queries:
            preview(course, [u.username for u in users[:size]], action="unenroll")
        counts.append(len(queries))
    assert counts[0] == counts[1]
