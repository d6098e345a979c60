"""Resend and revoke of invitations: what they write, what they refuse, and
their query counts."""

import pytest
from django.db import connection

from enrollments.models import Allowance, EnrollmentAudit, Notification, Source, State
from enrollments.services import allowance_resend, allowance_revoke
from tests.factories import AllowanceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_delivery(settings):
    # Leave the outbox rows pending: the tests read what was written.
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "memory://"


def _invited(course, n, **kwargs):
    return [AllowanceFactory(course=course, email=f"inv{i}@example.com", **kwargs) for i in range(n)]


def test_resend_emails_each_selected_invitation_once_through_the_outbox(course, course_admin):
    a, b = _invited(course, 2)
    result = allowance_resend(course=course, actor=course_admin, allowance_ids=[a.pk, b.pk, a.pk])
    assert result.changed == 2 and result.gone == 0 and result.too_soon == []
    notes = Notification.objects.filter(course=course).order_by("recipient")
    assert [(n.kind, n.recipient, n.auto_enroll, n.operation_id) for n in notes] == [
        (Notification.Kind.ALLOWED, "inv0@example.com", True, result.operation_id),
        (Notification.Kind.ALLOWED, "inv1@example.com", True, result.operation_id),
    ]


def test_resend_within_the_interval_sends_nothing_and_names_who(course, course_admin, settings):
    settings.INVITATION_RESEND_MINUTES = 10
    [a] = _invited(course, 1)
    allowance_resend(course=course, actor=course_admin, allowance_ids=[a.pk])
    again = allowance_resend(course=course, actor=course_admin, allowance_ids=[a.pk])
    assert again.changed == 0 and again.too_soon == ["inv0@example.com"]
    assert Notification.objects.count() == 1
    settings.INVITATION_RESEND_MINUTES = 0
    assert allowance_resend(course=course, actor=course_admin, allowance_ids=[a.pk]).changed == 1


def test_other_courses_and_used_invitations_change_nothing(course, other_course, course_admin):
    foreign = AllowanceFactory(course=other_course, email="foreign@example.com")
    [used] = _invited(course, 1, used_at="2026-01-01T00:00:00Z")
    for service in (allowance_resend, allowance_revoke):
        result = service(course=course, actor=course_admin, allowance_ids=[foreign.pk, used.pk, 987654])
        assert result.changed == 0 and result.gone == 3
    assert Allowance.objects.filter(pk__in=[foreign.pk, used.pk]).count() == 2
    assert not Notification.objects.exists() and not EnrollmentAudit.objects.exists()


def test_revoke_deletes_audits_and_optionally_emails(course, course_admin):
    a, b = _invited(course, 2)
    b.auto_enroll = False
    b.save()
    result = allowance_revoke(course=course, actor=course_admin, allowance_ids=[a.pk, b.pk], reason="wrong list", email_students=True)
    assert result.changed == 2
    assert not Allowance.objects.filter(course=course).exists()
    audits = EnrollmentAudit.objects.filter(course=course).order_by("identifier")
    assert [(x.identifier, x.state_before, x.state_after, x.reason, x.actor, x.source, x.operation_id) for x in audits] == [
        ("inv0@example.com", State.ALLOWED_AUTO, State.NONE, "wrong list", course_admin, Source.ROSTER, result.operation_id),
        ("inv1@example.com", State.ALLOWED, State.NONE, "wrong list", course_admin, Source.ROSTER, result.operation_id),
    ]
    assert sorted(Notification.objects.values_list("kind", "recipient", "reason")) == [
        (Notification.Kind.ALLOWANCE_REMOVED, "inv0@example.com", "wrong list"),
        (Notification.Kind.ALLOWANCE_REMOVED, "inv1@example.com", "wrong list"),
    ]


def test_a_withdrawn_invitation_greets_an_account_holder_by_name(course, course_admin):
    from tests.factories import UserFactory

    UserFactory(username="ada", email="Ada@Example.com", first_name="Ada", last_name="Lovelace")
    UserFactory(username="kim", email="kim@example.com", first_name="", last_name="")
    ids = [AllowanceFactory(course=course, email=email).pk for email in ("ada@example.com", "kim@example.com", "nobody@example.com")]
    allowance_revoke(course=course, actor=course_admin, allowance_ids=ids, email_students=True)
    assert dict(Notification.objects.values_list("recipient", "name")) == {
        "ada@example.com": "Ada Lovelace", "kim@example.com": "kim", "nobody@example.com": "",
    }


def test_revoke_without_email_writes_no_email(course, course_admin):
    [a] = _invited(course, 1)
    allowance_revoke(course=course, actor=course_admin, allowance_ids=[a.pk])
    assert EnrollmentAudit.objects.count() == 1 and not Notification.objects.exists()


def _queries(call) -> int:
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        call()
    return len(queries)


def test_queries_do_not_grow_with_the_selection(course, course_admin, other_course):
    """The same number of queries for 3 invitations as for 30 (both under
    SQLite's limit on parameters per statement, past which Django splits a
    bulk insert there; PostgreSQL's bulk insert is one statement at any size)."""
    small = [a.pk for a in _invited(course, 3)]
    large = [AllowanceFactory(course=other_course, email=f"big{i}@example.com").pk for i in range(30)]
    counts = {}
    for name, target, ids in (("small", course, small), ("large", other_course, large)):
        counts[name] = (
            _queries(lambda: allowance_resend(course=target, actor=course_admin, allowance_ids=ids)),  # noqa: B023
            _queries(lambda: allowance_revoke(course=target, actor=course_admin, allowance_ids=ids, email_students=True)),  # noqa: B023
        )
    assert counts["small"] == counts["large"]
    assert EnrollmentAudit.objects.count() == 33


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_two_resends_at_once_email_the_invitation_once(course, course_admin):
    """Each resend locks the row before it reads the recent emails, so the second
    waits for the first to commit and then sees its email."""
    from tests.races import fire_together, logged_in_clients

    [a] = _invited(course, 1)
    url = f"/courses/{course.key}/instructor/learners/invitations/action/"
    statuses = fire_together(
        logged_in_clients(course_admin, 6), lambda i, client: client.post(url, {"action": "resend", "allowance": a.pk}).status_code
    )
    assert statuses == [302] * 6
    assert Notification.objects.filter(recipient_key=a.email_key).count() == 1
    assert connection.vendor == "postgresql"
