"""The learners table's actions under real concurrency (PostgreSQL, real threads):
each change is audited and mailed once, and an action and a batch over the
same learners queue behind each other instead of deadlocking."""

import threading

import pytest
from django.db import connections
from django.urls import reverse

import enrollments.views_actions
from courses.models import CourseRole
from enrollments.models import Enrollment, EnrollmentAudit, Notification
from enrollments.services import enrollment_batch_update, roster_apply
from tests.factories import CourseFactory, EnrollmentFactory, UserFactory
from tests.races import fire_together, logged_in_clients, slowed

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgresql]


def test_two_staff_unenrolling_the_same_learner_at_once_change_audit_and_mail_once(monkeypatch):
    course = CourseFactory()
    staff = UserFactory()
    CourseRole.objects.create(course=course, user=staff, role=CourseRole.Role.STAFF)
    kim = EnrollmentFactory(course=course, user=UserFactory(username="kim"))
    # Both requests are held just before the service, so both are in flight when they reach its row lock.
    seen: list = []
    monkeypatch.setattr(enrollments.views_actions, "roster_apply", slowed(roster_apply, seen, "action"))
    url = reverse("learner_action", args=[course.key, kim.pk, "unenroll"])
    back = reverse("instructor_info", args=[course.key])  # any page showing the messages

    def unenroll(i, client):
        response = client.post(url, {"reason": f"by {i}", "email_students": "on", "next": back}, follow=True)
        return response.content.decode()

    pages = fire_together(logged_in_clients(staff, 4), unenroll)
    assert len(seen) == 4
    assert sum("kim was unenrolled." in page for page in pages) == 1
    assert sum("Nothing was changed: kim is not enrolled." in page for page in pages) == 3
    assert not Enrollment.objects.get(pk=kim.pk).is_active
    assert EnrollmentAudit.objects.filter(course=course).count() == 1
    assert Notification.objects.filter(course=course, recipient=kim.user.email).count() == 1


def test_a_row_action_and_a_batch_over_the_same_learners_do_not_deadlock():
    course = CourseFactory()
    staff = UserFactory()
    CourseRole.objects.create(course=course, user=staff, role=CourseRole.Role.STAFF)
    users = UserFactory.create_batch(60, verified=False)
    rows = [EnrollmentFactory(course=course, user=u) for u in users]
    errors: list = []
    barrier = threading.Barrier(4)

    def run(work):
        try:
            barrier.wait(timeout=30)
            for _ in range(3):
                work()
        except Exception as exc:  # a deadlock would surface here as an OperationalError
            errors.append(exc)
        finally:
            connections.close_all()

    # Locks are taken in user order by both, whichever order the ids come in.
    works = [
        lambda: roster_apply(actor=staff, course=course, action="unenroll", enrollment_ids=[r.pk for r in reversed(rows)], email_students=False),
        lambda: enrollment_batch_update(course=course, identifiers=[u.username for u in users], action="enroll", auto_enroll=True,
                                        email_students=False, actor=staff),
        lambda: roster_apply(actor=staff, course=course, action="change_mode", mode="verified", enrollment_ids=[r.pk for r in rows]),
        lambda: enrollment_batch_update(course=course, identifiers=[u.username for u in reversed(users)], action="unenroll",
                                        auto_enroll=True, email_students=False, actor=staff),
    ]
    threads = [threading.Thread(target=run, args=(w,)) for w in works]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    # Every change was audited once: the audit trail of each learner alternates its states.
    for user in users[:5]:
        states = list(EnrollmentAudit.objects.filter(course=course, user=user).exclude(state_before="enrolled", state_after="enrolled")
                      .exclude(state_before="unenrolled", state_after="unenrolled").order_by("id").values_list("state_before", "state_after"))
        assert all(a[1] == b[0] for a, b in zip(states, states[1:], strict=False)), states


def test_confirming_one_bulk_preview_several_times_at_once_applies_it_once(monkeypatch):
    import re

    import enrollments.views_roster

    course = CourseFactory()
    staff = UserFactory()
    CourseRole.objects.create(course=course, user=staff, role=CourseRole.Role.STAFF)
    rows = [EnrollmentFactory(course=course, user=UserFactory(username=f"b{i}")) for i in range(5)]
    url = reverse("learners_bulk", args=[course.key]) + "?action=unenroll&" + "&".join(f"ids={r.pk}" for r in rows)
    clients = logged_in_clients(staff, 4)
    page = clients[0].post(url, {"expected": "5", "email_students": "on", "step": "preview"}).content.decode()
    fingerprint = re.search(r'name="fingerprint" value="([0-9a-f]+)"', page).group(1)
    # Every Confirm is held before the service, so all are in flight when they reach the rows' locks.
    seen: list = []
    monkeypatch.setattr(enrollments.views_roster, "roster_apply", slowed(roster_apply, seen, "action"))

    def confirm(i, client):
        return client.post(url, {"expected": "5", "email_students": "on", "step": "confirm", "fingerprint": fingerprint}).status_code

    statuses = fire_together(clients, confirm)
    assert len(seen) == 4
    # The first applies the preview; the others find the rows changed under their locks and show the new preview.
    assert sorted(statuses) == [302, 409, 409, 409]
    assert not Enrollment.objects.filter(course=course, is_active=True).exists()
    assert EnrollmentAudit.objects.filter(course=course).count() == 5
    assert Notification.objects.filter(course=course).count() == 5
