"""The counter triggers plan their statements for the rows of each call.

PL/pgSQL caches a statement's plan from its first call in a session; planned
for the empty transition tables of an upsert that updated nothing, the joins
of the UPDATE trigger became nested loops, and a later unenroll of thousands
of rows on the same connection compared every old row with every new one.
``auto_explain`` shows the plans the trigger's statements actually ran with."""

import re

import pytest
from django.db import connection

from enrollments.models import Enrollment

from ..factories import CourseFactory, UserFactory

ROWS = 60


@pytest.fixture
def trigger_plans():
    """The plans of the statements run from now on (trigger bodies included), as PostgreSQL logs them."""
    plans: list[str] = []
    with connection.cursor() as cursor:
        cursor.execute("LOAD 'auto_explain'")
        for setting, value in (("log_min_duration", "0"), ("log_nested_statements", "on"), ("log_level", "notice")):
            cursor.execute(f"SET LOCAL auto_explain.{setting} = {value}")
        cursor.execute("SET LOCAL client_min_messages = notice")

    def keep(diagnostic):
        plans.append(diagnostic.message_primary or "")

    connection.connection.add_notice_handler(keep)
    yield plans
    connection.connection.remove_notice_handler(keep)


@pytest.mark.postgresql
@pytest.mark.django_db
def test_a_large_update_after_an_empty_one_is_planned_for_its_own_rows(trigger_plans):
    course = CourseFactory()
    users = UserFactory.create_batch(ROWS)
    Enrollment.objects.bulk_create([Enrollment(user=user, course=course, mode="audit") for user in users])
    # The trigger's first call in the session: empty transition tables.
    Enrollment.objects.filter(pk=-1).update(is_active=False)
    trigger_plans.clear()

    Enrollment.objects.filter(course=course).update(is_active=False)

    joins = [plan for plan in trigger_plans if "new_rows n JOIN old_rows o" in plan]
    assert joins, trigger_plans
    # Planned for this call, a scan of a transition table expects its rows
    # (half of them where it filters on is_active); planned for none, it expects one.
    expected = [int(rows) for plan in joins for rows in re.findall(r"Named Tuplestore Scan  \(cost=[\d.]+ rows=(\d+)", plan)]
    assert expected and min(expected) >= ROWS // 2, joins
