"""The Django admin changes course teams only through course_role_grant and
course_role_revoke: the last admin's role cannot be deleted or demoted there
either (refused with a message, nothing changed, nothing logged), and any other
role change works and is logged as before."""

import pytest
from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.messages import get_messages
from django.urls import reverse

from courses.models import Course, CourseRole

from ..factories import CourseRoleFactory

pytestmark = pytest.mark.django_db

REFUSAL = "A course needs at least one admin; add another admin first."


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _roles(course) -> dict[str, str]:
    return dict(CourseRole.objects.filter(course=course).values_list("user__username", "role"))


def _role(course, user) -> CourseRole:
    return CourseRole.objects.get(course=course, user=user)


def test_deleting_the_last_admin_role_is_refused(client_for, platform_admin, course, course_admin, course_staff):
    role = _role(course, course_admin)
    response = client_for(platform_admin).post(reverse("admin:courses_courserole_delete", args=[role.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:courses_courserole_change", args=[role.pk])
    assert _messages(response) == [REFUSAL]
    assert _roles(course) == {"courseadmin": "admin", "coursestaff": "staff"}
    assert not LogEntry.objects.exists()


def test_deleting_another_role_works_and_is_logged(client_for, platform_admin, course, course_admin, course_staff):
    role = _role(course, course_staff)
    response = client_for(platform_admin).post(reverse("admin:courses_courserole_delete", args=[role.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert _roles(course) == {"courseadmin": "admin"}
    entry = LogEntry.objects.get()
    assert (entry.action_flag, entry.object_id, entry.user) == (DELETION, str(role.pk), platform_admin)


def test_deleting_selected_roles_including_the_last_admin_deletes_none(client_for, platform_admin, course, course_admin, course_staff):
    ids = [_role(course, course_admin).pk, _role(course, course_staff).pk]
    response = client_for(platform_admin).post(
        reverse("admin:courses_courserole_changelist"), {"action": "delete_selected", "_selected_action": ids, "post": "yes"}
    )
    assert response.status_code == 302
    assert _messages(response) == [REFUSAL]
    assert _roles(course) == {"courseadmin": "admin", "coursestaff": "staff"}
    assert not LogEntry.objects.exists()


def test_demoting_the_last_admin_is_refused(client_for, platform_admin, course, course_admin):
    role = _role(course, course_admin)
    response = client_for(platform_admin).post(reverse("admin:courses_courserole_change", args=[role.pk]), {"role": "staff"})
    assert response.status_code == 302
    assert _messages(response) == [REFUSAL]
    assert _roles(course) == {"courseadmin": "admin"}
    assert not LogEntry.objects.exists()


def _course_form(course, roles: list[dict], **changes) -> dict:
    data = {
        "key": course.key, "display_name": course.display_name, "description": "", "modes": course.modes,
        "self_enrollment": "on", "enrollment_key": "", "max_enrollments": "",
        "start_0": "", "start_1": "", "end_0": "", "end_1": "",
        "enrollment_start_0": "", "enrollment_start_1": "", "enrollment_end_0": "", "enrollment_end_1": "",
        "roles-TOTAL_FORMS": str(len(roles)), "roles-INITIAL_FORMS": str(sum("id" in r for r in roles)),
        "roles-MIN_NUM_FORMS": "0", "roles-MAX_NUM_FORMS": "1000",
    } | changes
    for i, role in enumerate(roles):
        data |= {f"roles-{i}-{name}": value for name, value in role.items()}
        data[f"roles-{i}-course"] = str(course.pk)
    return data


def _row(course_role: CourseRole, **changes) -> dict:
    return {"id": str(course_role.pk), "user": str(course_role.user_id), "role": course_role.role} | changes


def test_removing_the_last_admin_in_the_course_form_changes_nothing(client_for, platform_admin, course, course_admin, course_staff):
    admin_role, staff_role = _role(course, course_admin), _role(course, course_staff)
    url = reverse("admin:courses_course_change", args=[course.pk])
    response = client_for(platform_admin).post(
        url, _course_form(course, [_row(admin_role, DELETE="on"), _row(staff_role)], display_name="Renamed")
    )
    assert response.status_code == 302
    assert response["Location"] == url
    assert _messages(response) == [REFUSAL]
    assert _roles(course) == {"courseadmin": "admin", "coursestaff": "staff"}
    assert Course.objects.get(pk=course.pk).display_name == "Enrollment 101"
    assert not LogEntry.objects.exists()


def test_promoting_someone_and_removing_the_old_admin_in_one_save_works(client_for, platform_admin, course, course_admin, course_staff):
    admin_role, staff_role = _role(course, course_admin), _role(course, course_staff)
    response = client_for(platform_admin).post(
        reverse("admin:courses_course_change", args=[course.pk]),
        _course_form(course, [_row(admin_role, DELETE="on"), _row(staff_role, role="admin")]),
    )
    assert response.status_code == 302
    assert _roles(course) == {"coursestaff": "admin"}
    assert "Deleted course team member" in LogEntry.objects.get().get_change_message()


def test_adding_a_role_in_the_course_form(client_for, platform_admin, course, course_admin, learner):
    admin_role = _role(course, course_admin)
    response = client_for(platform_admin).post(
        reverse("admin:courses_course_change", args=[course.pk]),
        _course_form(course, [_row(admin_role), {"user": str(learner.pk), "role": "staff"}]),
    )
    assert response.status_code == 302
    assert _roles(course) == {"courseadmin": "admin", learner.username: "staff"}


def test_demoting_one_of_two_admins_works(client_for, platform_admin, course, course_admin):
    second = CourseRoleFactory(course=course, role=CourseRole.Role.ADMIN)
    response = client_for(platform_admin).post(reverse("admin:courses_courserole_change", args=[second.pk]), {"role": "staff"})
    assert response.status_code == 302
    assert _roles(course) == {"courseadmin": "admin", second.user.username: "staff"}
