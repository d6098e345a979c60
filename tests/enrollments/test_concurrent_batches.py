"""Concurrent batches of the same new people, on PostgreSQL with real threads.

New enrollments and invitations have no row to lock before they are written,
and a batch takes its course's write lock before it reads, so that batches
queue instead of deadlocking over each other's new rows. What each batch did
(and says, audits and mails) must come from what its write did. Every batch
here is held until all of them have arrived (``tests.races.met``): the worst
case of a race, made certain."""

from collections import Counter

import pytest
from django.core import mail
from django.db import connections
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


def hold_at_the_course_lock(monkeypatch, parties):
    """Every batch arrives at the course's write lock before any takes it: the
    worst case of a race, made certain. They then queue there, each reading
    what the one before it wrote (``enrollments/services/locks.py``)."""
    monkeypatch.setattr(enrollments.services.batch, "course_write_lock", met(enrollments.services.batch.course_write_lock, parties))


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
    hold_at_the_course_lock(monkeypatch, batches)

    answers = fire_together(clients, lambda i, client: client.post(previews[i] + "confirm/")["Location"])

    # One confirm applies what its preview showed. Every other one queued behind
    # it at the course's lock, found the course changed since its preview, and
    # is shown the new preview instead of applying something else.
    applied = [location for location in answers if "/results/" in location]
    stale = [location for location in answers if "/preview/" in location]
    assert (len(applied), len(stale)) == (1, batches - 1), answers
    assert_each_change_once(course, users, emails)
    told = Counter()
    for job in BatchJob.objects.filter(course=course):
        told.update(job.summary)
    assert told == {Outcome.ENROLLED: PEOPLE, Outcome.ALLOWED_AUTO: PEOPLE}
    per_person = Counter()
    for job in BatchJob.objects.filter(course=course):
        per_person.update(row["identifier"] for row in job.results if row["outcome"] in (Outcome.ENROLLED, Outcome.ALLOWED_AUTO))
    assert set(per_person.values()) == {1} and len(per_person) == 2 * PEOPLE


def test_simultaneous_api_bulk_calls_enroll_audit_and_mail_each_person_once(monkeypatch, people):
    """Two callers name the same two courses in opposite orders. Each takes
    the courses in id order whatever the order named, so they queue rather
    than deadlock; each batch is slowed at its decide step, holding its
    course, so that the other is waiting for it meanwhile."""
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


def test_a_learner_enrolling_themself_while_the_course_team_enrolls_them_is_enrolled_and_audited_once():
    """Both take the course's lock (self-enrollment for the cap, the batch
    before it reads), so one goes first and the other reads what it wrote:
    whichever it was, the learner is enrolled and audited once, and the batch
    says truthfully whether it enrolled them (and mails only then)."""
    course, learner = CourseFactory(), UserFactory()
    admin = UserFactory(is_staff=True, is_superuser=True)

    batch, own = call_together([
        lambda: enrollment_batch_update(course=course, identifiers=[learner.username], action="enroll", auto_enroll=True,
                                        email_students=True, actor=admin),
        lambda: enrollment_self_enroll(user=learner, course=course),
    ])

    assert isinstance(own, Enrollment), own
    assert Enrollment.objects.filter(course=course, user=learner, is_active=True).count() == 1
    sources = list(EnrollmentAudit.objects.filter(course=course).values_list("source", flat=True))
    if sources == [Source.SELF]:
        assert [r.outcome for r in batch.results] == [Outcome.ALREADY_ENROLLED]
        assert mail.outbox == []
    else:
        assert sources == [Source.BATCH]
        assert [r.outcome for r in batch.results] == [Outcome.ENROLLED]
        assert [m.to for m in mail.outbox] == [[learner.email]]


def test_two_batches_and_an_invitation_committed_between_their_reads_do_not_deadlock(monkeypatch):
    """The interleaving that deadlocked before batches took the course's lock:
    batch A reads (nobody enrolled, nobody invited); batch C invites the
    newcomer and commits; batch B reads and locks that invitation; A writes
    the learner's new enrollment and waits for B's invitation row while B
    waits for A's enrollment. Now B and C queue behind A, and each batch
    reads what the one before it wrote."""
    import threading
    import time

    course, learner = CourseFactory(), UserFactory(username="ulla")
    admin = UserFactory(is_staff=True, is_superuser=True)
    real_decide = enrollments.services.batch.batch_decide
    a_read, b_read = threading.Event(), threading.Event()

    def decide(**kwargs):
        name = threading.current_thread().name
        if name == "A":
            a_read.set()
            b_read.wait(timeout=2)  # B waits for A's course lock meanwhile, and never reads first
        elif name == "B":
            b_read.set()
            time.sleep(0.5)  # time for A to write (and, without the course lock, to wait for B)
        return real_decide(**kwargs)

    monkeypatch.setattr(enrollments.services.batch, "batch_decide", decide)
    answers: dict = {}

    def start(name, identifiers):
        def run():
            try:
                answers[name] = enrollment_batch_update(course=course, identifiers=identifiers, action="enroll", auto_enroll=True,
                                                        email_students=False, actor=admin)
            except Exception as exc:  # a deadlock victim, say
                answers[name] = exc
            finally:
                connections.close_all()

        thread = threading.Thread(target=run, name=name)
        thread.start()
        return thread

    a = start("A", ["ulla", "newcomer@example.com"])
    assert a_read.wait(timeout=10)
    c = start("C", ["newcomer@example.com"])
    c.join(timeout=1)  # committed at once without the course lock; queued behind A with it
    b = start("B", ["ulla", "newcomer@example.com"])
    for thread in (a, b, c):
        thread.join(timeout=60)

    assert not [answer for answer in answers.values() if isinstance(answer, Exception)], answers
    assert Enrollment.objects.filter(course=course, user=learner, is_active=True).count() == 1
    assert Allowance.objects.filter(course=course, email_key="newcomer@example.com").count() == 1
    audits = Counter(EnrollmentAudit.objects.filter(course=course).values_list("identifier", "state_after"))
    assert audits == Counter({("ulla", State.ENROLLED): 1, ("newcomer@example.com", State.ALLOWED_AUTO): 1})


def test_activation_and_batches_of_the_same_courses_each_enroll_once():
    # A new account confirms its address (its auto-enroll invitations turn into
    # enrollments) while batches of both courses enroll it by username: every
    # course ends with one enrollment and one audited change, whoever wrote
    # first, and nobody fails (activation takes the courses' locks first, in
    # the batches' order).
    from enrollments.services import allowance_consume_for

    courses = [CourseFactory(), CourseFactory()]
    for round_ in range(5):
        email = f"activating{round_}@example.com"
        for course in courses:
            enrollment_batch_update(course=course, identifiers=email, action="enroll", auto_enroll=True, email_students=False, actor=None)
        user = UserFactory(username=f"activating{round_}", email=email)
        calls = [lambda user=user: allowance_consume_for(user=user)] + [
            (lambda course=course, user=user: enrollment_batch_update(
                course=course, identifiers=user.username, action="enroll", auto_enroll=True, email_students=False, actor=None))
            for course in courses
        ]
        answers = call_together(calls)
        assert not [a for a in answers if isinstance(a, Exception)], answers
        for course in courses:
            assert Enrollment.objects.filter(user=user, course=course, is_active=True).count() == 1
            assert EnrollmentAudit.objects.filter(user=user, course=course, state_after=State.ENROLLED).count() == 1
