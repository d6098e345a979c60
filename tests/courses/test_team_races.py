"""Concurrent changes to one course team, with real threads on PostgreSQL: two
admins removing each other at once queue behind each other (one fixed lock
order) instead of deadlocking, and the last-admin rule is decided on the locked
team, so exactly one removal succeeds."""

import threading
import time

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections

import courses.services
from courses.models import CourseRole
from courses.services import course_role_revoke

from ..factories import CourseFactory, CourseRoleFactory

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db(transaction=True)]


def _remove_each_other_at_once(course, first, second) -> list[object]:
    barrier = threading.Barrier(2)
    outcomes: list[object] = [None, None]

    def work(i, user, actor):
        try:
            with connection.cursor() as cursor:
                # A regression waits at most this long instead of hanging the suite.
                cursor.execute("SET lock_timeout = '10s'")
            barrier.wait(timeout=30)
            course_role_revoke(course=course, user=user, actor=actor)
            outcomes[i] = "removed"
        except ValidationError as exc:
            outcomes[i] = " ".join(exc.messages)
        except Exception as exc:  # noqa: BLE001 (any other error is the failure this test is about)
            outcomes[i] = exc
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=work, args=(0, second, first)),
        threading.Thread(target=work, args=(1, first, second)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return outcomes


def test_two_admins_removing_each_other_at_once_leave_exactly_one(monkeypatch):
    # Each removal holds its locks a moment before deciding, so both are in
    # flight together every time (without the fixed order this deadlocked on
    # every run, not one in five).
    real_ensure = courses.services._ensure_another_admin

    def slow_ensure(*args, **kwargs):
        time.sleep(0.2)
        return real_ensure(*args, **kwargs)

    monkeypatch.setattr(courses.services, "_ensure_another_admin", slow_ensure)
    for _ in range(10):
        course = CourseFactory()
        first = CourseRoleFactory(course=course, role=CourseRole.Role.ADMIN).user
        second = CourseRoleFactory(course=course, role=CourseRole.Role.ADMIN).user

        outcomes = _remove_each_other_at_once(course, first, second)

        assert sorted(map(str, outcomes)) == [
            "A course needs at least one admin; add another admin first.",
            "removed",
        ], outcomes
        admins = list(CourseRole.objects.filter(course=course, role=CourseRole.Role.ADMIN).values_list("user", flat=True))
        assert len(admins) == 1
        # Whoever removed the other is the one left.
        assert admins == [first.pk if outcomes[0] == "removed" else second.pk]
