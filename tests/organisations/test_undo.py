"""Undo of the organisation's operations on enrollments (an assignment or a
rule applied, a unit membership change): each is audited under an operation
id in each course, and undoing it restores the enrollments as they were."""

import pytest

from enrollments.models import Enrollment, EnrollmentAudit, Source
from enrollments.services.undo import operation_undo
from organisations.services import unit_members_add

from ..factories import EnrollmentFactory, UserFactory
from .factories import OrgUnitFactory
from .test_services import link, make_rule, make_target

pytestmark = pytest.mark.django_db


def enrollments(course):
    return sorted(Enrollment.objects.filter(course=course).values_list("user__username", "is_active"))


def undo_all(course, source, actor):
    """Undo every operation of ``source`` in the course, newest first."""
    operations = EnrollmentAudit.objects.filter(course=course, source=source).order_by("-created", "-id").values_list("operation_id", flat=True)
    for operation_id in dict.fromkeys(operations):
        operation_undo(course=course, operation_id=operation_id, actor=actor)


def test_undo_of_an_assignment_and_of_a_unit_membership_change(course, platform_admin):
    target = make_target("department")
    first, later = UserFactory(username="first"), UserFactory(username="later")
    EnrollmentFactory(course=course, user=UserFactory(username="kept"))
    unit_members_add(target=target, users=[first], actor=platform_admin)
    before = enrollments(course)
    link(target, platform_admin, course=course)  # enrolls first
    unit_members_add(target=target, users=[later], actor=platform_admin)  # enrolls later
    assert enrollments(course) == [("first", True), ("kept", True), ("later", True)]
    undo_all(course, Source.UNIT, platform_admin)
    assert enrollments(course) == before


def test_undo_of_a_rule_application(course, platform_admin):
    dept = OrgUnitFactory()
    UserFactory(username="ann", department=dept)
    EnrollmentFactory(course=course, user=UserFactory(username="bob"), mode="verified")
    before = enrollments(course)
    make_rule([course], platform_admin, department=dept)
    assert enrollments(course) == [("ann", True), ("bob", True)]
    undo_all(course, Source.RULE, platform_admin)
    assert enrollments(course) == before
    assert not Enrollment.objects.filter(user__username="ann").exists()
