"""The Settings tab: the course's settings (admins edit, staff read), its cohorts
and the history of both; the services behind them."""

import re
from datetime import UTC, datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.urls import reverse

from courses.models import Cohort, CohortMembership, Course, CourseSettingsChange
from courses.services import cohort_assign
from enrollments.models import EnrollmentAudit, Source, State
from enrollments.services import cohort_create, cohort_delete, cohort_rename, course_settings_update, enrollment_key_generate
from enrollments.services.course_settings import KEY_ALPHABET, course_settings_decide
from tests.factories import CohortFactory, CourseFactory, EnrollmentFactory, UserFactory

pytestmark = pytest.mark.django_db

KEY_RE = re.compile(rf"^[{KEY_ALPHABET}]{{4}}-[{KEY_ALPHABET}]{{4}}-[{KEY_ALPHABET}]{{4}}$")


def settings_url(course):
    return reverse("instructor_settings", args=[course.key])


def form_data(course, **changes):
    data = {
        "display_name": course.display_name, "enrollment_start": "", "enrollment_end": "", "enrollment_key": course.enrollment_key,
        "max_enrollments": "" if course.max_enrollments is None else str(course.max_enrollments),
        "modes": course.mode_list, "default_mode": course.default_mode,
        "default_duration_days": "" if course.default_duration_days is None else str(course.default_duration_days),
        "default_access_until": "", "expiry_reminder_days": "" if course.expiry_reminder_days is None else str(course.expiry_reminder_days),
        "language": course.language,
    }
    if course.expiry_reminder_team:
        data["expiry_reminder_team"] = "on"
    if course.self_enrollment:
        data["self_enrollment"] = "on"
    if course.invitation_only:
        data["invitation_only"] = "on"
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


# --- who may see and change ---------------------------------------------------------------------


@pytest.mark.parametrize(("persona", "status", "editable"), [
    ("course_admin", 200, True), ("platform_admin", 200, True), ("course_staff", 200, False),
    ("other_staff", 403, False), ("learner", 403, False), (None, 302, False),
])
def test_who_sees_the_settings_and_who_may_edit_them(request, client_for, course, persona, status, editable):
    client = client_for(request.getfixturevalue(persona) if persona else None)
    response = client.get(settings_url(course))
    assert response.status_code == status
    if status == 200:
        page = response.content.decode()
        assert ("Save settings" in page) == editable
        assert ("you see them read-only" in page) == (not editable)
        assert ('name="display_name"' in page) and (("disabled" in page.split('name="display_name"')[1][:200]) != editable)
    post = client.post(settings_url(course), form_data(course, display_name="Changed"))
    course.refresh_from_db()
    assert (course.display_name == "Changed") == editable
    if not editable and persona is not None:
        assert post.status_code == 403


def test_settings_tab_is_on_the_dashboard(client_for, course, course_staff):
    page = client_for(course_staff).get(reverse("instructor_info", args=[course.key])).content.decode()
    assert f'href="{settings_url(course)}"' in page


# --- saving ---------------------------------------------------------------------------------------


def test_an_admin_saves_the_settings_with_post_redirect_get_and_a_history_row(client_for, course, course_admin):
    client = client_for(course_admin)
    response = client.post(settings_url(course), form_data(
        course, display_name="Enrollment 102", enrollment_start="2026-02-01T09:00", enrollment_end="2026-03-01T17:30",
        enrollment_key="open sesame", max_enrollments="50", invitation_only="on", modes=["audit", "verified", "honor"], default_mode="verified",
    ))
    assert response.status_code == 302 and response["Location"] == settings_url(course)
    course.refresh_from_db()
    assert (course.display_name, course.enrollment_key, course.max_enrollments, course.invitation_only) == ("Enrollment 102", "open sesame", 50, True)
    assert course.modes == "verified,audit,honor" and course.default_mode == "verified"
    assert course.enrollment_start.astimezone(UTC) == datetime(2026, 2, 1, 9, 0, tzinfo=UTC)
    change = CourseSettingsChange.objects.get(course=course)
    assert change.actor == course_admin and change.kind == CourseSettingsChange.Kind.SETTINGS
    assert change.changes["enrollment_key"] == ["", "(set)"] and "open sesame" not in str(change.changes) + change.summary
    assert change.changes["max_enrollments"] == [None, 50]
    page = client.get(settings_url(course)).content.decode()
    assert "Settings saved." in page and "Enrollment key: set" in page and "Cap: none → 50" in page
    assert "Display name: Enrollment 101 → Enrollment 102" in page


def test_an_admin_sets_the_periods_of_access_and_the_history_says_what_changed(client_for, course, course_admin):
    client = client_for(course_admin)
    assert course.expiry_reminder_days == 7  # the default: reminders on
    page = client.get(settings_url(course)).content.decode()
    assert 'name="expiry_reminder_days" value="7"' in page and 'id="period-settings"' in page
    response = client.post(settings_url(course), form_data(
        course, default_duration_days="365", default_access_until="2027-06-30T17:00", expiry_reminder_days="", expiry_reminder_team="on",
    ), follow=True)
    course.refresh_from_db()
    assert course.default_duration_days == 365 and course.default_access_until == datetime(2027, 6, 30, 17, 0, tzinfo=UTC)
    assert course.expiry_reminder_days is None and course.expiry_reminder_team
    change = CourseSettingsChange.objects.get()
    assert change.changes["default_duration_days"] == [None, 365] and change.changes["expiry_reminder_days"] == [7, None]
    assert "Default days of access: none → 365" in change.summary and "Reminder days before the end: 7 → none" in change.summary
    assert "Summary to the course team: off → on" in response.content.decode()


def test_the_service_refuses_a_duration_out_of_range(course, course_admin):
    with pytest.raises(ValidationError) as caught:
        course_settings_update(course=course, actor=course_admin, default_duration_days=0)
    assert "default_duration_days" in caught.value.error_dict
    course.refresh_from_db()
    assert course.default_duration_days is None


def test_saving_nothing_new_writes_no_history(client_for, course, course_admin):
    client = client_for(course_admin)
    response = client.post(settings_url(course), form_data(course), follow=True)
    assert "Nothing was changed" in response.content.decode()
    assert not CourseSettingsChange.objects.exists()


@pytest.mark.parametrize(("changes", "message"), [
    ({"enrollment_start": "2026-03-01T09:00", "enrollment_end": "2026-02-01T09:00"}, "Enrollment must close after it opens."),
    ({"enrollment_start": "2026-03-01T09:00", "enrollment_end": "2026-03-01T09:00"}, "Enrollment must close after it opens."),
    ({"enrollment_start": "yesterday"}, "Enter a valid date/time."),
    ({"modes": ["audit"], "default_mode": "verified"}, "The default mode must be one of the modes offered."),
    ({"modes": ["audit", "platinum"]}, "Select a valid choice. platinum is not one of the available choices."),
    ({"modes": []}, "Offer at least one mode."),
    ({"max_enrollments": "0"}, "Ensure this value is greater than or equal to 1."),
    ({"max_enrollments": "lots"}, "Enter a whole number."),
    ({"display_name": ""}, "This field is required."),
    ({"enrollment_key": "k" * 101}, "Ensure this value has at most 100 characters"),
    ({"default_duration_days": "0"}, "A duration is from 1 to 3650 days (ten years)."),
    ({"default_duration_days": "3651"}, "A duration is from 1 to 3650 days (ten years)."),
    ({"default_duration_days": "a year"}, "Give a whole number of days."),
    ({"default_access_until": "soon"}, "Enter a valid date/time."),
    ({"expiry_reminder_days": "0"}, "Remind from 1 to 365 days before the end"),
    ({"expiry_reminder_days": "366"}, "Remind from 1 to 365 days before the end"),
])
def test_bad_settings_are_refused_with_a_message_and_change_nothing(client_for, course, course_admin, changes, message):
    before = Course.objects.filter(pk=course.pk).values().get()
    response = client_for(course_admin).post(settings_url(course), form_data(course, **changes))
    assert response.status_code == 400
    page = response.content.decode()
    assert message in page and "Nothing was saved." in page and "autofocus" in page
    assert Course.objects.filter(pk=course.pk).values().get() == before
    assert not CourseSettingsChange.objects.exists()


def test_a_cap_below_the_number_enrolled_asks_for_confirmation(client_for, course, course_admin):
    EnrollmentFactory.create_batch(3, course=course)
    client = client_for(course_admin)
    response = client.post(settings_url(course), form_data(course, max_enrollments="2"))
    assert response.status_code == 400
    page = response.content.decode()
    # The course admin's own enrollment (a team member is enrolled) is not among the three: the factory made them.
    assert "3 learners are enrolled, more than a cap of 2." in page and 'name="confirm_cap"' in page
    course.refresh_from_db()
    assert course.max_enrollments is None
    response = client.post(settings_url(course), form_data(course, max_enrollments="2", confirm_cap="on"))
    assert response.status_code == 302
    course.refresh_from_db()
    assert course.max_enrollments == 2
    # Unchanged afterwards, the cap needs no confirmation again.
    assert client.post(settings_url(course), form_data(course, display_name="Other name")).status_code == 302


def test_generate_a_strong_key_fills_the_field_without_saving(client_for, course, course_admin):
    client = client_for(course_admin)
    response = client.post(settings_url(course), form_data(course, display_name="Unsaved name", generate_key="1"))
    assert response.status_code == 200
    page = response.content.decode()
    key = re.search(r'name="enrollment_key" value="([^"]*)"', page)[1]
    assert KEY_RE.match(key) and "It is not saved yet" in page and 'value="Unsaved name"' in page
    course.refresh_from_db()
    assert course.enrollment_key == "" and course.display_name == "Enrollment 101"
    assert client.post(settings_url(course), form_data(course, enrollment_key=key)).status_code == 302
    course.refresh_from_db()
    assert course.enrollment_key == key


def test_generated_keys_are_strong_and_differ():
    keys = {enrollment_key_generate() for _ in range(200)}
    assert len(keys) == 200 and all(KEY_RE.match(k) for k in keys)


def test_the_service_refuses_staff_and_unknown_settings(course, course_staff, course_admin):
    with pytest.raises(PermissionDenied):
        course_settings_update(course=course, actor=course_staff, display_name="X")
    with pytest.raises(ValidationError, match="Unknown settings: key"):
        course_settings_update(course=course, actor=course_admin, key="course-v1:X+Y+Z")


def test_decide_is_a_pure_diff_with_its_rules():
    current = {"display_name": "A", "max_enrollments": 5, "modes": "audit", "enrollment_key": ""}
    changes = course_settings_decide(current=current, wanted={"display_name": "B", "max_enrollments": 5, "modes": "audit"}, active_count=9, confirm_cap=False)
    assert changes.fields == {"display_name": ("A", "B")} and changes.summary == "Display name: A → B"
    with pytest.raises(ValidationError) as refused:
        course_settings_decide(current=current, wanted={"max_enrollments": 4, "modes": "audit"}, active_count=9, confirm_cap=False)
    assert refused.value.error_dict["max_enrollments"][0].code == "cap_below_count"
    with pytest.raises(ValidationError, match="Each mode may be listed once"):
        course_settings_decide(current=current, wanted={"modes": "audit,audit"}, active_count=0, confirm_cap=False)


def test_posting_needs_the_csrf_token(course, course_admin):
    client = Client(enforce_csrf_checks=True)
    client.force_login(course_admin)
    assert client.post(settings_url(course), form_data(course, display_name="X")).status_code == 403


# --- cohorts ------------------------------------------------------------------------------------


def test_the_cohort_list_shows_member_counts(client_for, course, course_staff):
    red = CohortFactory(course=course, name="Red")
    CohortFactory(course=course, name="Empty")
    cohort_assign(course=course, cohort_name="Red", users=UserFactory.create_batch(3))
    page = client_for(course_staff).get(settings_url(course)).content.decode()
    assert re.search(r"Red</td>\s*<td class=\"text-end\">3</td>", page)
    assert re.search(r"Empty</td>\s*<td class=\"text-end\">0</td>", page)
    assert reverse("course_cohort_delete", args=[course.key, red.pk]) in page


def test_staff_create_a_cohort_and_a_duplicate_name_is_refused(client_for, course, course_staff):
    client = client_for(course_staff)
    response = client.post(reverse("course_cohort_add", args=[course.key]), {"name": "  Evening group "})
    assert response.status_code == 302 and response["Location"].endswith("#cohorts")
    assert list(Cohort.objects.filter(course=course).values_list("name", flat=True)) == ["Evening group"]
    response = client.post(reverse("course_cohort_add", args=[course.key]), {"name": "EVENING GROUP"})
    assert response.status_code == 400 and "This course already has a cohort named EVENING GROUP." in response.content.decode()
    assert Cohort.objects.filter(course=course).count() == 1
    assert CourseSettingsChange.objects.get(course=course).summary == "Cohort Evening group created"


def test_rename_a_cohort_keeps_its_members(client_for, course, course_staff):
    red = CohortFactory(course=course, name="Red")
    CohortFactory(course=course, name="Blue")
    cohort_assign(course=course, cohort_name="Red", users=[UserFactory()])
    client = client_for(course_staff)
    url = reverse("course_cohort_rename", args=[course.key, red.pk])
    assert 'value="Red"' in client.get(url).content.decode()
    assert client.post(url, {"name": "blue"}).status_code == 400
    assert client.post(url, {"name": "Crimson"}).status_code == 302
    red.refresh_from_db()
    assert red.name == "Crimson" and red.memberships.count() == 1
    assert CourseSettingsChange.objects.filter(summary="Cohort Red renamed Crimson").exists()


def test_delete_a_cohort_asks_first_with_the_count_and_audits_each_member(client_for, course, course_staff):
    red = CohortFactory(course=course, name="Red")
    kim, lea = EnrollmentFactory(course=course, mode="verified"), EnrollmentFactory(course=course, is_active=False)
    outsider = UserFactory()  # in the cohort without an enrollment (assigned by the bulk API, say)
    cohort_assign(course=course, cohort_name="Red", users=[kim.user, lea.user, outsider])
    client = client_for(course_staff)
    url = reverse("course_cohort_delete", args=[course.key, red.pk])
    page = client.get(url).content.decode()
    assert "Delete the cohort Red?" in page and "This touches 3 learners: its members are then in no cohort." in page
    assert Cohort.objects.filter(pk=red.pk).exists()
    response = client.post(url, {"reason": "Merged"}, follow=True)
    assert "Cohort Red deleted; its 3 members are in no cohort now." in response.content.decode()
    assert not Cohort.objects.filter(pk=red.pk).exists() and not CohortMembership.objects.exists()
    audits = {a.user_id: a for a in EnrollmentAudit.objects.filter(course=course)}
    assert (audits[kim.user_id].state_before, audits[kim.user_id].mode_before, audits[kim.user_id].cohort_before, audits[kim.user_id].cohort_after) == (
        State.ENROLLED, "verified", "Red", "",
    )
    assert audits[lea.user_id].state_after == State.UNENROLLED and audits[outsider.pk].state_after == State.NONE
    assert {a.reason for a in audits.values()} == {"Merged"} and {a.source for a in audits.values()} == {Source.ROSTER}
    assert len({a.operation_id for a in audits.values()}) == 1


def test_cohort_pages_of_another_course_are_not_found(client_for, course, course_staff, other_course, other_staff):
    theirs = CohortFactory(course=other_course, name="Theirs")
    client = client_for(course_staff)
    assert client.get(reverse("course_cohort_rename", args=[course.key, theirs.pk])).status_code == 404
    assert client.post(reverse("course_cohort_delete", args=[course.key, theirs.pk])).status_code == 404
    assert client_for(other_staff).post(reverse("course_cohort_add", args=[course.key]), {"name": "Sneaky"}).status_code == 403
    assert Cohort.objects.filter(pk=theirs.pk).exists() and not Cohort.objects.filter(name="Sneaky").exists()


def test_cohort_services_check_the_team(course, other_staff):
    cohort = CohortFactory(course=course)
    for call in (
        lambda: cohort_create(course=course, name="X", actor=other_staff),
        lambda: cohort_rename(cohort=cohort, name="X", actor=other_staff),
        lambda: cohort_delete(cohort=cohort, actor=other_staff),
    ):
        with pytest.raises(PermissionDenied):
            call()
    assert Cohort.objects.get(pk=cohort.pk).name == cohort.name


@pytest.mark.postgresql  # SQLite splits bulk statements by its parameter limit
def test_deleting_a_cohort_costs_the_same_queries_for_few_and_many_members(course_staff):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts = []
    for size in (2, 200):
        course = CourseFactory()
        course.roles.create(user=course_staff, role="staff")
        cohort = CohortFactory(course=course)
        users = UserFactory.create_batch(size, verified=False)
        cohort_assign(course=course, cohort_name=cohort.name, users=users)
        with CaptureQueriesContext(connection) as ctx:
            assert cohort_delete(cohort=cohort, actor=course_staff) == size
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1], counts


def test_deleting_an_empty_cohort_says_it_touches_nobody(client_for, course, course_staff):
    empty = CohortFactory(course=course, name="Empty")
    page = client_for(course_staff).get(reverse("course_cohort_delete", args=[course.key, empty.pk])).content.decode()
    assert "It has no members: this touches nobody." in page


def test_a_save_that_keeps_the_cap_does_not_count_the_enrollments(course, course_admin):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    course.max_enrollments = 10
    course.save()
    with CaptureQueriesContext(connection) as kept:
        course_settings_update(course=course, actor=course_admin, max_enrollments=10, display_name="Kept cap")
    with CaptureQueriesContext(connection) as changed:
        course_settings_update(course=course, actor=course_admin, max_enrollments=11, display_name="New cap")
    # The number enrolled comes from the counters, read once and only for a new cap.
    def reads_the_counters(query):
        return "enrollments_enrollmentcount" in query["sql"] and "enrollments_enrollment\"" not in query["sql"]

    assert not any(reads_the_counters(q) for q in kept.captured_queries)
    assert sum(reads_the_counters(q) for q in changed.captured_queries) == 1
    assert not any("COUNT(" in q["sql"].upper() for q in changed.captured_queries)
