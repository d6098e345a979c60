"""The reads behind the learner's story, the audit log and the invitations
table: what they return, their keyset pages, and their query counts at two
sizes (a count that grew with the table would fail at the larger one)."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from enrollment_site.lib.keyset import Cursor, InvalidCursor
from enrollments.models import Allowance, EnrollmentAudit, Notification, Source, State
from enrollments.selectors.audit_log import AuditFilter, audit_log_page, operation_summaries
from enrollments.selectors.history import learner_story
from enrollments.selectors.invitations import invitation_count, invitation_ids, invitations_page
from enrollments.services import enrollment_batch_update
from tests.factories import AllowanceFactory, UserFactory

pytestmark = pytest.mark.django_db


def _audits(course, n, *, actor=None, source=Source.BATCH, state_after=State.ENROLLED, operation_id=None, created=None, identifier="x"):
    created = created or timezone.now()
    EnrollmentAudit.objects.bulk_create([
        EnrollmentAudit(
            course=course, actor=actor, identifier=f"{identifier}{i}", state_before=State.NONE, state_after=state_after,
            source=source, operation_id=operation_id, created=created,
        )
        for i in range(n)
    ])


def _walk(course, filters, size):
    """Every row, following the Older links from the first page."""
    seen, cursor = [], None
    while True:
        page = audit_log_page(course=course, filters=filters, cursor=cursor, size=size)
        seen.extend(page.rows)
        if not page.next_cursor:
            return seen
        cursor = Cursor.decode(page.next_cursor)


# --- the audit log -------------------------------------------------------------------------


def test_pages_walk_every_row_once_newest_first_even_when_a_batch_shares_one_timestamp(course, other_course):
    now = timezone.now()
    _audits(course, 7, created=now)  # one batch: same created
    _audits(course, 3, created=now - timedelta(hours=1), identifier="older")
    _audits(other_course, 5, created=now)
    rows = _walk(course, AuditFilter(), size=3)
    assert len(rows) == 10 and len({r.pk for r in rows}) == 10
    assert [(r.created, r.pk) for r in rows] == sorted(((r.created, r.pk) for r in rows), reverse=True)
    assert all(r.course_id == course.pk for r in rows)


def test_newer_goes_back_to_the_page_before(course):
    _audits(course, 8)
    first = audit_log_page(course=course, filters=AuditFilter(), cursor=None, size=3)
    assert first.is_first and first.previous_cursor is None
    second = audit_log_page(course=course, filters=AuditFilter(), cursor=Cursor.decode(first.next_cursor), size=3)
    assert not second.is_first
    back = audit_log_page(course=course, filters=AuditFilter(), cursor=Cursor.decode(second.previous_cursor), size=3)
    assert [r.pk for r in back.rows] == [r.pk for r in first.rows]
    assert back.is_first


@pytest.mark.parametrize("text", ["x", "!!!", "a" * 300, "eyJjIjoiMjAyNiJ9", "eyJjIjogIjIwMjYtMDEtMDEiLCAiaSI6IC0xfQ"])
def test_a_malformed_cursor_is_refused_with_a_message(text):
    with pytest.raises(InvalidCursor, match="not valid"):
        Cursor.decode(text)


def test_each_filter_keeps_only_its_rows(course, course_admin, course_staff):
    op = uuid.uuid4()
    _audits(course, 2, actor=course_admin, source=Source.API, identifier="api")
    _audits(course, 3, actor=course_staff, source=Source.CODE, state_after=State.UNENROLLED, operation_id=op, identifier="op")
    _audits(course, 4, created=timezone.now() - timedelta(days=10), identifier="old")

    def idents(**kwargs):
        return sorted(r.identifier for r in _walk(course, AuditFilter(**kwargs), size=50))

    assert idents(actor_id=course_admin.pk) == ["api0", "api1"]
    assert idents(source=Source.CODE) == ["op0", "op1", "op2"]
    assert idents(action=State.UNENROLLED) == ["op0", "op1", "op2"]
    assert idents(operation_id=op) == ["op0", "op1", "op2"]
    today = timezone.localdate()
    assert len(idents(since=today - timedelta(days=1))) == 5
    assert idents(until=today - timedelta(days=5)) == ["old0", "old1", "old2", "old3"]
    assert idents(since=today - timedelta(days=10), until=today - timedelta(days=10)) == ["old0", "old1", "old2", "old3"]


def test_operation_summaries_count_each_operation_in_one_query(course, other_course, django_assert_num_queries):
    a, b = uuid.uuid4(), uuid.uuid4()
    _audits(course, 4, operation_id=a)
    _audits(course, 2, operation_id=b)
    _audits(other_course, 9, operation_id=a)  # the same id elsewhere does not count here
    with django_assert_num_queries(1):
        summaries = operation_summaries(course=course, operation_ids=[a, b, None, a])
    assert {op: s.changes for op, s in summaries.items()} == {a: 4, b: 2}
    assert operation_summaries(course=course, operation_ids=[None]) == {}


@pytest.mark.parametrize("size", [10, 300])
def test_an_audit_page_is_one_query_whatever_the_log_size(course, size, django_assert_num_queries, course_admin):
    _audits(course, size, actor=course_admin)
    first = audit_log_page(course=course, filters=AuditFilter(), cursor=None, size=5)
    with django_assert_num_queries(1):
        page = audit_log_page(course=course, filters=AuditFilter(source=Source.BATCH), cursor=Cursor.decode(first.next_cursor), size=5)
        # names come joined: reading them is no further query
        assert [r.actor.username for r in page.rows] == ["courseadmin"] * 5


# --- a learner's story --------------------------------------------------------------------------


def test_the_story_of_an_enrolled_learner_has_each_change_with_its_emails(course, course_admin, learner):
    enrollment_batch_update(course=course, identifiers=[learner.username], action="enroll", auto_enroll=True, email_students=True,
                            actor=course_admin, reason="term starts")
    enrollment_batch_update(course=course, identifiers=[learner.email], action="unenroll", auto_enroll=True, email_students=False,
                            actor=course_admin, reason="left")
    Notification.objects.filter(recipient_key=learner.email).update(status=Notification.Status.FAILED, error="mailbox full")
    story = learner_story(course=course, who="  LEARNER ")
    assert story.user == learner and story.state == State.UNENROLLED
    assert [(e.audit.state_before, e.audit.state_after, e.audit.reason) for e in story.entries] == [
        (State.ENROLLED, State.UNENROLLED, "left"), (State.NONE, State.ENROLLED, "term starts"),
    ]
    unenrolled, enrolled = story.entries
    assert unenrolled.emails == []
    assert [(n.kind, n.status) for n in enrolled.emails] == [(Notification.Kind.ENROLLED, Notification.Status.FAILED)]
    assert enrolled.audit.actor == course_admin


def test_an_address_without_an_account_has_its_invitation_history(course, course_admin):
    enrollment_batch_update(course=course, identifiers=["New.Person@Example.com"], action="enroll", auto_enroll=False,
                            email_students=True, actor=course_admin)
    story = learner_story(course=course, who="new.person@example.com")
    assert story.user is None and story.found and story.state == State.ALLOWED
    assert story.allowance is not None
    [entry] = story.entries
    assert entry.audit.state_after == State.ALLOWED and [n.kind for n in entry.emails] == [Notification.Kind.ALLOWED]


def test_an_email_no_change_claims_is_its_own_entry(course):
    allowance = AllowanceFactory(course=course, email="resent@example.com")
    Notification.objects.create(course=course, kind=Notification.Kind.ALLOWED, recipient=allowance.email, recipient_key=allowance.email,
                                subject="again")
    [entry] = learner_story(course=course, who="resent@example.com").entries
    assert entry.audit is None and [n.subject for n in entry.emails] == ["again"]


def test_unknown_usernames_and_invalid_text_find_nobody(course):
    nobody = learner_story(course=course, who="no_such_user")
    assert nobody.valid and not nobody.found and nobody.entries == []
    assert not learner_story(course=course, who="not an@address").valid
    assert not learner_story(course=course, who="").valid


def test_another_courses_history_is_not_in_the_story(course, other_course, course_admin, learner):
    enrollment_batch_update(course=other_course, identifiers=[learner.username], action="enroll", auto_enroll=True,
                            email_students=True, actor=None)
    story = learner_story(course=course, who=learner.username)
    assert story.state == State.NONE and story.entries == [] and story.enrollment is None


@pytest.mark.parametrize("changes", [2, 40])
def test_a_story_costs_the_same_queries_whatever_its_length(course, course_admin, changes, django_assert_max_num_queries):
    person = UserFactory(username="story", email="story@example.com")
    for i in range(changes // 2):
        for action in ("enroll", "unenroll"):
            enrollment_batch_update(course=course, identifiers=[person.username], action=action, auto_enroll=True,
                                    email_students=True, actor=course_admin, reason=f"{action} {i}")
    with django_assert_max_num_queries(5):
        story = learner_story(course=course, who="story@example.com")
        assert sum(len(e.emails) for e in story.entries) == changes
        assert {e.audit.actor.username for e in story.entries} == {"courseadmin"}


# --- invitations --------------------------------------------------------------------------------


def test_invitations_are_the_courses_unused_allowances_newest_first(course, other_course):
    now = timezone.now()
    old = AllowanceFactory(course=course, email="old@example.com", created=now - timedelta(days=1))
    new = AllowanceFactory(course=course, email="New@Example.com", created=now)
    AllowanceFactory(course=course, email="used@example.com", used_at=now)
    AllowanceFactory(course=other_course, email="elsewhere@example.com")
    Notification.objects.create(course=course, kind=Notification.Kind.ALLOWED, recipient="New@Example.com", recipient_key="new@example.com",
                                subject="s", status=Notification.Status.SENT)
    page = invitations_page(course=course, cursor=None)
    assert [a.pk for a in page.rows] == [new.pk, old.pk]
    assert page.rows[0].email_status == Notification.Status.SENT and page.rows[1].emailed_at is None
    assert invitation_count(course=course) == 2
    assert [a.email for a in invitations_page(course=course, search=" NEW", cursor=None).rows] == ["New@Example.com"]
    assert invitations_page(course=course, search="%", cursor=None).rows == []
    assert invitation_ids(course=course, ids=[old.pk, 999999]) == [old.pk]


@pytest.mark.parametrize("size", [5, 120])
def test_an_invitations_page_is_one_query_whatever_the_number(course, size, django_assert_num_queries, course_admin):
    Allowance.objects.bulk_create([Allowance(course=course, email=f"p{i}@example.com", email_key=f"p{i}@example.com", created_by=course_admin)
                                   for i in range(size)])
    with django_assert_num_queries(1):
        page = invitations_page(course=course, cursor=None, size=50)
        assert {a.created_by.username for a in page.rows} == {"courseadmin"}
