"""A rule application and an import's apply cost the same queries for 10
people as for 2,000 (one chunk each): their writes are set-based, so only
the number of chunks (of ``CHUNK`` people) and of courses adds queries. On
PostgreSQL: SQLite's path splits its statements by the backend's parameter
limit, so its count grows in steps of a few hundred rows."""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from enrollments.models import Allowance, Enrollment, EnrollmentAudit, Notification
from organisations.models import EnrollmentOrigin, EnrollmentRule, Placement, UnitKind
from organisations.services import import_check, import_run, rule_apply, rule_save

from ..factories import CourseFactory, EnrollmentFactory, UserFactory
from .factories import OrgUnitFactory

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db]

User = get_user_model()


def people(size: int, prefix: str):
    """``size`` accounts, written set-based."""
    return User.objects.bulk_create(
        User(username=f"{prefix}{i}", email=f"{prefix}{i}@example.com", email_key=f"{prefix}{i}@example.com", password="!") for i in range(size)
    )


def rule_queries(size: int) -> int:
    """Queries of applying a rule that enrolls ``size`` people (notifications on), a tenth of them former learners."""
    dept, course = OrgUnitFactory(kind=UnitKind.DEPARTMENT), CourseFactory()
    users = people(size, f"rule{size}_")
    Placement.objects.bulk_create(Placement(user=u, department=dept) for u in users)
    # Former learners a rule unenrolled: the rule enrolls them again.
    former = users[: size // 10]
    Enrollment.objects.bulk_create(Enrollment(user=u, course=course, is_active=False, mode="audit", source="rule") for u in former)
    EnrollmentAudit.objects.bulk_create(
        EnrollmentAudit(course=course, user=u, identifier=u.username, state_before="enrolled", state_after="unenrolled", source="rule") for u in former
    )
    rule = rule_save(rule=EnrollmentRule(name=f"Everyone {size}", department=dept), courses=[course], actor=None)
    with CaptureQueriesContext(connection) as queries:
        done = rule_apply(rule=rule, actor=None, email_students=True)
    assert done == {"enrolled": size - size // 10, "reactivated": size // 10, "unenrolled": 0}
    assert EnrollmentOrigin.objects.filter(course=course).count() == size
    assert Notification.objects.filter(course=course).count() == size
    return len(queries)


def test_a_rule_costs_the_same_queries_for_10_people_as_for_2000():
    assert rule_queries(10) == rule_queries(2000)


def import_queries(size: int) -> int:
    """Queries of applying a checked import of ``size`` rows (half accounts, one of them enrolled already, half new addresses)."""
    course = CourseFactory(key=f"course-v1:Acme+FLAT{size}+2026")
    accounts = people(size // 2, f"import{size}_")
    EnrollmentFactory(course=course, user=accounts[0])
    emails = [u.email for u in accounts] + [f"new{size}_{i}@example.org" for i in range(size - len(accounts))]
    data = "\n".join([f"email,{course.key}", *(f"{e},x" for e in emails)]).encode()
    checked = import_check(name="people.csv", data=data, actor=UserFactory(), email_students=True)
    with CaptureQueriesContext(connection) as queries:
        summary = import_run(org_import=checked, actor=None)
    assert (summary["enrolled"], summary["left_alone"], summary["allowances"]) == (size // 2 - 1, 1, size - size // 2)
    assert Allowance.objects.filter(course=course).count() == size - size // 2
    assert EnrollmentAudit.objects.filter(course=course).count() == size - 1
    return len(queries)


def test_an_import_costs_the_same_queries_for_10_rows_as_for_2000():
    assert import_queries(10) == import_queries(2000)
