"""Undo of the organisation's operations on enrollments (an assignment or a
rule applied, a unit membership change): each is audited under an operation
id in each course, and undoing it restores the enrollments as they were."""

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from enrollments.models import Enrollment, EnrollmentAudit, Notification, Source
from enrollments.services.undo import operation_undo, undo_preview
from organisations.models import EnrollmentOrigin, UnitKind
from organisations.selectors.targets import Target
from organisations.services import assignment_apply, assignment_link, plans, unit_members_add, unit_members_remove

from ..factories import CourseFactory, EnrollmentFactory, UserFactory
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


# --- One organisation operation is one operation id, in every course and chunk, and one undo ---------------

def origins(*courses):
    return sorted(EnrollmentOrigin.objects.filter(course__in=courses).values_list("course__key", "user__username", "origin", "operation_id", "created"))


def bundle(course, other_course, actor, members):
    """A department whose members a qualification of two courses is about to reach."""
    qual = Target(unit=OrgUnitFactory(kind=UnitKind.QUALIFICATION))
    dept = Target(unit=OrgUnitFactory(kind=UnitKind.DEPARTMENT))
    link(qual, actor, course=course)
    link(qual, actor, course=other_course)
    unit_members_add(target=dept, users=members, actor=actor)
    return dept, qual


def test_an_assignment_over_two_courses_and_several_chunks_is_one_undo(course, other_course, platform_admin, monkeypatch,
                                                                      django_capture_on_commit_callbacks):
    monkeypatch.setattr(plans, "CHUNK", 2)
    members = [UserFactory(username=f"m{i}", email=f"m{i}@example.com") for i in range(5)]
    EnrollmentFactory(course=other_course, user=members[0], mode="verified")  # already in: left as is
    dept, qual = bundle(course, other_course, platform_admin, members)
    before = (enrollments(course), enrollments(other_course), origins(course, other_course))
    with django_capture_on_commit_callbacks(execute=True):
        assignment_link(target=dept, qualification=qual.unit, actor=platform_admin)
        assignment_apply(target=dept, qualification=qual.unit, actor=platform_admin, email_students=True)
    audits = EnrollmentAudit.objects.filter(source=Source.UNIT, course__in=[course, other_course])
    assert audits.count() == 5 + 4
    operation_id = audits.values_list("operation_id", flat=True).distinct().get()
    # One email per person and course, though one operation.
    assert Notification.objects.filter(operation_id=operation_id, recipient="m1@example.com").count() == 2

    undone = operation_undo(course=other_course, operation_id=operation_id, actor=platform_admin)
    assert len(undone.plan.restores) == 9 and [c.pk for c in undone.courses] == sorted([course.pk, other_course.pk])
    assert (enrollments(course), enrollments(other_course), origins(course, other_course)) == before
    # The undo of the undo puts the enrollments and their origins back, in both courses.
    after_undo = origins(course, other_course)
    operation_undo(course=course, operation_id=undone.undo_operation_id, actor=platform_admin)
    assert len(enrollments(course)) == 5 and len(origins(course, other_course)) == len(after_undo) + 9


def test_undo_puts_back_the_origin_row_an_operation_replaced(course, platform_admin):
    target = make_target("department")
    ann = UserFactory(username="ann")
    link(target, platform_admin, course=course)
    unit_members_add(target=target, users=[ann], actor=platform_admin)  # the unit enrolls ann
    first = origins(course)
    unit_members_remove(target=target, users=[ann], actor=platform_admin, also_unenroll=True)
    assert origins(course) == first  # unenrolling keeps where the enrollment came from
    unit_members_add(target=target, users=[ann], actor=platform_admin)  # enrolled again: the origin row is this change's
    again = origins(course)
    assert again != first
    operation_id = again[0][3]
    undone = operation_undo(course=course, operation_id=operation_id, actor=platform_admin)
    assert enrollments(course) == [("ann", False)] and origins(course) == first
    operation_undo(course=course, operation_id=undone.undo_operation_id, actor=platform_admin)
    assert enrollments(course) == [("ann", True)] and origins(course) == again


def test_a_rule_over_two_courses_is_one_undo(course, other_course, platform_admin):
    dept = OrgUnitFactory()
    UserFactory(username="ann", department=dept)
    make_rule([course, other_course], platform_admin, department=dept)
    operation_id = EnrollmentAudit.objects.filter(source=Source.RULE).values_list("operation_id", flat=True).distinct().get()
    operation_undo(course=course, operation_id=operation_id, actor=platform_admin)
    assert enrollments(course) == enrollments(other_course) == [] and origins(course, other_course) == []


def test_only_who_manages_every_course_of_the_operation_may_undo_it(course, other_course, platform_admin, course_staff):
    members = [UserFactory(username="ann")]
    dept, qual = bundle(course, other_course, platform_admin, members)
    link(dept, platform_admin, qualification=qual.unit)
    operation_id = EnrollmentAudit.objects.filter(course=course, source=Source.UNIT).values_list("operation_id", flat=True).get()
    preview = undo_preview(course=course, operation_id=operation_id, viewer=course_staff)
    assert "also changed 1 course you may not manage (course-v1:Acme+OTHER+2026)" in preview.refusal
    with pytest.raises(ValidationError):
        operation_undo(course=course, operation_id=operation_id, actor=course_staff)
    assert enrollments(course) == enrollments(other_course) == [("ann", True)]
    assert undo_preview(course=course, operation_id=operation_id, viewer=platform_admin).refusal == ""


def _assignment_undo_queries(course, other_course, actor, n):
    members = get_user_model().objects.bulk_create([get_user_model()(username=f"q{n}-{i}", email=f"q{n}-{i}@example.com") for i in range(n)])
    dept, qual = bundle(course, other_course, actor, members)
    link(dept, actor, qualification=qual.unit)
    operation_id = EnrollmentAudit.objects.filter(course=course, source=Source.UNIT).values_list("operation_id", flat=True).distinct().get()
    with CaptureQueriesContext(connection) as queries:
        undone = operation_undo(course=course, operation_id=operation_id, actor=actor)
    assert len(undone.plan.restores) == 2 * n
    assert not EnrollmentOrigin.objects.filter(course__in=[course, other_course]).exists()
    return len(queries)


@pytest.mark.postgresql
def test_queries_of_a_multi_course_undo_do_not_grow_with_its_size(platform_admin):
    small = _assignment_undo_queries(CourseFactory(), CourseFactory(), platform_admin, 10)
    assert small == _assignment_undo_queries(CourseFactory(), CourseFactory(), platform_admin, 2_000)


def test_the_undo_page_of_a_multi_course_operation_names_its_courses(client_for, course, other_course, platform_admin, course_staff):
    dept, qual = bundle(course, other_course, platform_admin, [UserFactory(username="ann")])
    link(dept, platform_admin, qualification=qual.unit)
    operation_id = EnrollmentAudit.objects.filter(course=course, source=Source.UNIT).values_list("operation_id", flat=True).get()
    url = reverse("operation_undo", args=[course.key, operation_id])
    page = client_for(platform_admin).get(url).content.decode()
    assert "This operation changed 2 courses" in page and other_course.key in page and 'id="undo-confirm"' in page
    page = client_for(course_staff).get(url).content.decode()
    assert "you may not manage" in page and 'id="undo-confirm"' not in page
    assert client_for(course_staff).post(url).status_code == 302
    assert enrollments(other_course) == [("ann", True)]


def test_a_large_multi_course_undo_is_one_job_chunked_per_course(course, other_course, platform_admin, settings, monkeypatch,
                                                                  django_capture_on_commit_callbacks):
    from enrollments.models import UndoJob
    from enrollments.services import undo as undo_module
    from enrollments.services.undo import undo_start

    settings.ENROLLMENT_SYNC_LIMIT = 1
    monkeypatch.setattr(undo_module, "UNDO_CHUNK", 2)
    dept, qual = bundle(course, other_course, platform_admin, [UserFactory(username=f"m{i}") for i in range(3)])
    before = (enrollments(course), enrollments(other_course), origins(course, other_course))
    link(dept, platform_admin, qualification=qual.unit)
    operation_id = EnrollmentAudit.objects.filter(course=course, source=Source.UNIT).values_list("operation_id", flat=True).distinct().get()
    with django_capture_on_commit_callbacks(execute=True):
        job = undo_start(course=other_course, operation_id=operation_id, actor=platform_admin)
    assert isinstance(job, UndoJob)
    job.refresh_from_db()
    # 3 people in each of 2 courses: 2 chunks per course, counted per person and course.
    assert (job.status, job.total, job.done, job.summary["restored"]) == ("succeeded", 6, 6, 6)
    assert (enrollments(course), enrollments(other_course), origins(course, other_course)) == before


def test_the_undo_page_of_a_multi_course_operation_lists_its_people_course_by_course(client_for, course, other_course, platform_admin):
    import re

    from enrollments.services import roster_apply

    ann, bea = UserFactory(username="ann"), UserFactory(username="bea")
    dept, qual = bundle(course, other_course, platform_admin, [ann, bea])
    link(dept, platform_admin, qualification=qual.unit)
    # bea is unenrolled from the other course by hand since: left alone there, restored here.
    roster_apply(actor=platform_admin, course=other_course, action="unenroll",
                 enrollment_ids=[Enrollment.objects.get(course=other_course, user=bea).pk], email_students=False)
    operation_id = EnrollmentAudit.objects.filter(course=other_course, source=Source.UNIT).values_list("operation_id", flat=True).distinct().get()
    page = client_for(platform_admin).get(reverse("operation_undo", args=[other_course.key, operation_id])).content.decode()
    tables = dict(re.findall(r'<table[^>]*data-course="([^"]+)">(.*?)</table>', page, re.S))
    # This page's course first, each table captioned with its course's name.
    assert list(tables) == [other_course.key, course.key]
    assert "In Another course" in tables[other_course.key] and "1 person" in tables[other_course.key]
    assert "In Enrollment 101" in tables[course.key] and "2 people" in tables[course.key]
    names = {key: re.findall(r'<td class="text-break">(\w+)</td>', table) for key, table in tables.items()}
    assert names == {other_course.key: ["ann"], course.key: ["ann", "bea"]}
    alone = dict(re.findall(r'<ul[^>]*undo-course-left-alone" data-course="([^"]+)">(.*?)</ul>', page, re.S))
    assert list(alone) == [other_course.key] and "bea" in alone[other_course.key] and "In Another course:" in page
    assert "Undo: restore 3 people" in page
