"""Concurrent batches of the same new people, on PostgreSQL with real threads.

New enrollments and invitations have no row to lock before they are written,
so every batch reads "not enrolled"; what each batch did (and says, audits
and mails) must come from what its write did. Every batch here is held at its
decide step until all of them have read (``tests.races.met``): the worst case
of a race, made certain."""

from collections import Counter

import pytest
from django.core import mail
from django.urls import reverse

import enrollments.services.batch
from enrollments.models import Allowance, BatchJob, Enrollment, EnrollmentAudit, Notification, Outcome, Source, State
from enrollments.services import enrollment_batch_update, enrollment_self_enroll

from ..factories import CourseFactory, UserFactory
from ..races import call_together, fire_together, logged_in_clients, met, slowed
from .test_api import BULK_URL, api

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgresql,  # real concurrency needs a server database
]

PEOPLE = 100


@pytest.fixture
def people():
    """100 accounts never enrolled anywhere, and 100 addresses without an account."""
    users = UserFactory.create_batch(PEOPLE)
    emails = [f"newcomer{i}@example.com" for i in range(PEOPLE)]
    return users, emails


def hold_at_decide(monkeypatch, parties):
    monkeypatch.setattr(enrollments.services.batch, "batch_decide", met(enrollments.services.batch.batch_decide, parties))


def assert_each_change_once(course, users, emails):
    """One enrollment, one invitation, one audit entry and one email per person."""
    assert Enrollment.objects.filter(course=course, is_active=True).count() == PEOPLE
    assert Allowance.objects.filter(course=course).count() == PEOPLE
    audits = Counter(EnrollmentAudit.objects.filter(course=course).values_list("identifier", "state_before", "state_after"))
    assert audits == Counter(
        [(u.username, State.NONE, State.ENROLLED) for u in users] + [(e, State.NONE, State.ALLOWED_AUTO) for e in emails]
    )
    assert Counter(Notification.objects.filter(course=course).values_list("recipient", flat=True)) == Counter(
        [u.email for u in users] + emails
    )
    assert Counter(m.to[0] for m in mail.outbox) == Counter([u.email for u in users] + emails)


@pytest.mark.parametrize("batches", [2, 8])
def test_simultaneous_membership_batches_enroll_audit_and_mail_each_person_once(monkeypatch, people, batches):
    users, emails = people
    course = CourseFactory()
    admin = UserFactory(is_staff=True, is_superuser=True)
    identifiers = "\n".join([u.username for u in users] + emails)
    clients = logged_in_clients(admin, batches)
    # Each instructor previews the same list (nobody enrolled yet), then all confirm at once.
    previews = [
        client.post(
            reverse("batch_enrollment", args=[course.key]),
            {"identifiers": identifiers, "action": "enroll", "auto_enroll": "on", "email_students": "on"},
        )["Location"]
        for client in clients
    ]
    hold_at_decide(monkeypatch, batches)

    answers = fire_together(clients, lambda i, client: client.post(previews[i] + "confirm/")["Location"])

    assert all("/results/" in location for location in answers), "every confirm still decides what its preview showed"
    assert_each_change_once(course, users, emails)
    # What the callers were told: one of them enrolled or invited each person,
    # every other one heard "already enrolled" or "already invited".
    told = Counter()
    for job in BatchJob.objects.filter(course=course):
        told.update(job.summary)
    assert told == {
        Outcome.ENROLLED: PEOPLE, Outcome.ALLOWED_AUTO: PEOPLE,
        Outcome.ALREADY_ENROLLED: PEOPLE * (batches - 1), Outcome.ALREADY_ALLOWED: PEOPLE * (batches - 1),
    }
    per_person = Counter()
    for job in BatchJob.objects.filter(course=course):
        per_person.update(row["identifier"] for row in job.results if row["outcome"] in (Outcome.ENROLLED, Outcome.ALLOWED_AUTO))
    assert set(per_person.values()) == {1} and len(per_person) == 2 * PEOPLE


def test_simultaneous_api_bulk_calls_enroll_audit_and_mail_each_person_once(monkeypatch, people):
    """Two callers name the same two courses in opposite orders. A barrier
    cannot hold them here (the first course's rows stay locked while the
    second is decided), so each batch is slowed at its decide step instead,
    which puts every read before the other caller's write all the same."""
    users, emails = people
    course, other = CourseFactory(), CourseFactory()
    admin = UserFactory(is_staff=True, is_superuser=True)
    seen: list = []
    monkeypatch.setattr(enrollments.services.batch, "batch_decide", slowed(enrollments.services.batch.batch_decide, seen, "request"))
    orders = [f"{course.key},{other.key}", f"{other.key},{course.key}"]

    def call(i, client):
        return client.post(BULK_URL, {
            "identifiers": "\n".join([u.username for u in users] + emails), "courses": orders[i], "action": "enroll",
            "auto_enroll": True, "email_students": True,
        }, format="json")

    answers = fire_together([api(admin), api(admin)], call)

    assert [getattr(a, "status_code", a) for a in answers] == [200, 200]
    assert len(seen) == 4
    for c in (course, other):
        assert Enrollment.objects.filter(course=c, is_active=True).count() == PEOPLE
        assert Allowance.objects.filter(course=c).count() == PEOPLE
        audits = Counter(EnrollmentAudit.objects.filter(course=c).values_list("identifier", "state_before", "state_after"))
        assert audits == Counter(
            [(u.username, State.NONE, State.ENROLLED) for u in users] + [(e, State.NONE, State.ALLOWED_AUTO) for e in emails]
        )
    assert Counter(m.to[0] for m in mail.outbox) == Counter(2 * ([u.email for u in users] + emails))
    # Per course and identifier exactly one caller saw the change (off before,
    # on after); the other was told it was done already (on before and after).
    changed = Counter()
    for answer in answers:
        assert list(answer.json()["courses"]) == orders[answers.index(answer)].split(",")
        for key, result in answer.json()["courses"].items():
            for r in result["results"]:
                flag = "allowed" if r["identifier"].startswith("newcomer") else "enrollment"
                assert r["after"][flag] is True
                if not r["before"][flag]:
                    changed[key, r["identifier"]] += 1
    assert len(changed) == 2 * 2 * PEOPLE and set(changed.values()) == {1}


def test_a_learner_enrolling_themself_while_the_course_team_enrolls_them_is_enrolled_and_audited_once(monkeypatch):
    """The batch reads "not enrolled", then (slowed) writes after the learner's
    own enrollment has committed: the batch must say "already enrolled" and
    record nothing."""
    course, learner = CourseFactory(), UserFactory()
    admin = UserFactory(is_staff=True, is_superuser=True)
    seen: list = []
    monkeypatch.setattr(enrollments.services.batch, "batch_decide", slowed(enrollments.services.batch.batch_decide, seen, "request"))

    batch, own = call_together([
        lambda: enrollment_batch_update(course=course, identifiers=[learner.username], action="enroll", auto_enroll=True,
                                        email_students=True, actor=admin),
        lambda: enrollment_self_enroll(user=learner, course=course),
    ])

    assert isinstance(own, Enrollment), own
    assert [r.outcome for r in batch.results] == [Outcome.ALREADY_ENROLLED]
    assert Enrollment.objects.filter(course=course, user=learner, is_active=True).count() == 1
    assert list(EnrollmentAudit.objects.filter(course=course).values_list("source", flat=True)) == [Source.SELF]
    assert mail.outbox == []
