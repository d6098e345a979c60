"""The learners table's bulk actions preview before they write: counts per
outcome with the first names, emails, invitations withdrawn and course team
members called out, with nothing written; Confirm applies exactly that, and a
row changed in between shows the new preview instead (nothing written)."""

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from courses.models import CohortMembership, CourseRole
from enrollments.models import Allowance, Enrollment, EnrollmentAudit, Notification, RosterAction
from enrollments.services import RosterPreviewStale, roster_apply, roster_preview

from ..factories import AllowanceFactory, CohortFactory, CourseFactory, CourseRoleFactory, EnrollmentFactory, UserFactory

pytestmark = pytest.mark.django_db


def bulk_url(course, **params) -> str:
    from urllib.parse import urlencode

    return reverse("learners_bulk", args=[course.key]) + "?" + urlencode(params, doseq=True)


@pytest.fixture
def people(course):
    """ann and bea enrolled (ann invited too, bea on the course team), cid unenrolled, dot verified."""
    made = {
        "ann": EnrollmentFactory(course=course, user=UserFactory(username="ann", email="ann@example.com")),
        "bea": EnrollmentFactory(course=course, user=UserFactory(username="bea", email="bea@example.com")),
        "cid": EnrollmentFactory(course=course, user=UserFactory(username="cid"), is_active=False),
        "dot": EnrollmentFactory(course=course, user=UserFactory(username="dot"), mode="verified"),
    }
    AllowanceFactory(course=course, email="ann@example.com")
    CourseRoleFactory(course=course, user=made["bea"].user, role=CourseRole.Role.STAFF)
    return made


def written():
    return (
        sorted(Enrollment.objects.values_list("user__username", "is_active", "mode")), Allowance.objects.count(),
        EnrollmentAudit.objects.count(), Notification.objects.count(), CohortMembership.objects.count(),
    )


def test_an_unenroll_preview_counts_each_outcome_calls_out_the_team_and_writes_nothing(client_for, course, course_staff, people):
    before = written()
    url = bulk_url(course, action="unenroll", ids=[e.pk for e in people.values()])
    response = client_for(course_staff).post(url, {"expected": "4", "email_students": "on", "step": "preview"})
    page = response.content.decode()
    assert response.status_code == 200 and written() == before
    assert re.search(r'data-outcome="changed:"><td>will be unenrolled</td><td class="text-end">3</td><td[^>]*>ann, bea, dot', page)
    assert re.search(r'data-outcome="unchanged"><td>already unenrolled</td><td class="text-end">1</td><td[^>]*>cid', page)
    assert "1 of them is on this course's team: bea." in page
    assert "1 invitation for their addresses would be withdrawn." in page and "3 emails would be sent." in page
    assert 'id="bulk-confirm">Confirm: unenroll 3 learners</button>' in page


def test_confirm_applies_the_preview(client_for, course, course_staff, people):
    client = client_for(course_staff)
    url = bulk_url(course, action="change_mode", ids=[people["ann"].pk, people["dot"].pk])
    page = client.post(url, {"expected": "2", "mode": "verified", "step": "preview"}).content.decode()
    assert "mode audit → verified" in page and "already verified" in page
    fingerprint = re.search(r'name="fingerprint" value="([0-9a-f]+)"', page).group(1)
    assert '<input type="hidden" name="mode" value="verified">' in page
    response = client.post(url, {"expected": "2", "mode": "verified", "step": "confirm", "fingerprint": fingerprint})
    assert response.status_code == 302
    assert Enrollment.objects.get(pk=people["ann"].pk).mode == "verified"
    assert EnrollmentAudit.objects.filter(course=course, identifier="ann", mode_after="verified").count() == 1


def test_a_row_changed_since_the_preview_shows_the_new_preview_and_writes_nothing(client_for, course, course_staff, people):
    client = client_for(course_staff)
    url = bulk_url(course, action="unenroll", ids=[people["ann"].pk, people["cid"].pk])
    _, fingerprint = None, re.search(
        r'name="fingerprint" value="([0-9a-f]+)"', client.post(url, {"expected": "2", "step": "preview"}).content.decode()
    ).group(1)
    Enrollment.objects.filter(pk=people["cid"].pk).update(is_active=True)  # enrolled again meanwhile
    before = written()
    response = client.post(url, {"expected": "2", "step": "confirm", "fingerprint": fingerprint})
    page = response.content.decode()
    assert response.status_code == 409 and written() == before
    assert "the learners changed since the preview" in page
    assert re.search(r'will be unenrolled</td><td class="text-end">2</td>', page)
    fresh = re.search(r'name="fingerprint" value="([0-9a-f]+)"', page).group(1)
    assert fresh != fingerprint
    assert client.post(url, {"expected": "2", "step": "confirm", "fingerprint": fresh}).status_code == 302
    assert not Enrollment.objects.filter(pk__in=[people["ann"].pk, people["cid"].pk], is_active=True).exists()


def test_a_forged_or_missing_fingerprint_writes_nothing(client_for, course, course_staff, people):
    before = written()
    url = bulk_url(course, action="unenroll", ids=[people["ann"].pk])
    response = client_for(course_staff).post(url, {"expected": "1", "step": "confirm", "fingerprint": "0" * 64})
    assert response.status_code == 409 and written() == before


def test_a_refused_row_is_shown_and_offers_no_confirm(client_for, course, course_staff, people):
    people["cid"].user.is_active = False
    people["cid"].user.save()
    url = bulk_url(course, action="enroll_again", ids=[people["cid"].pk, people["ann"].pk])
    page = client_for(course_staff).post(url, {"expected": "2", "step": "preview"}).content.decode()
    assert "cid: the account is deactivated" in page and 'id="bulk-confirm"' not in page


@pytest.mark.parametrize(("persona", "status"), [
    ("platform_admin", 200), ("course_admin", 200), ("course_staff", 200), ("other_staff", 403), ("learner", 403), (None, 302),
])
def test_the_preview_is_for_the_course_team(request, client_for, course, people, persona, status):
    before = written()
    url = bulk_url(course, action="unenroll", ids=[people["ann"].pk])
    assert client_for(request.getfixturevalue(persona) if persona else None).post(url, {"expected": "1", "step": "preview"}).status_code == status
    assert written() == before


def test_the_service_refuses_a_stale_fingerprint(course, course_staff, people):
    ids = [people["ann"].pk]
    preview = roster_preview(course=course, action=RosterAction.UNENROLL, enrollment_ids=ids, email_students=False)
    roster_apply(actor=course_staff, course=course, action=RosterAction.UNENROLL, enrollment_ids=ids, email_students=False)
    with pytest.raises(RosterPreviewStale):
        roster_apply(actor=course_staff, course=course, action=RosterAction.ENROLL_AGAIN, enrollment_ids=ids, email_students=False,
                     expected_fingerprint=preview.fingerprint)


# Starting states per learner: 0 active audit, 1 active verified, 2 unenrolled, 3 in cohort A,
# 4 a period that has ended, 5 a period that ends in a week.
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(states=st.lists(st.sampled_from([0, 1, 2, 3, 4, 5]), min_size=1, max_size=5), action=st.sampled_from(RosterAction.values),
       email=st.booleans())
def test_confirm_equals_preview_for_random_states(platform_admin, states, action, email):
    course = CourseFactory()
    cohort = CohortFactory(course=course, name="A")
    rows = []
    for state in states:
        end = {4: timezone.now() - dt.timedelta(days=1), 5: timezone.now() + dt.timedelta(days=7)}.get(state)
        e = EnrollmentFactory(course=course, user=UserFactory(), is_active=state != 2, mode="verified" if state == 1 else "audit", access_until=end)
        if state == 3:
            CohortMembership.objects.create(cohort=cohort, course=course, user=e.user)
        rows.append(e)
    options = {
        RosterAction.CHANGE_MODE: {"mode": "verified"}, RosterAction.MOVE_COHORT: {"cohort": cohort}, RosterAction.EXTEND: {"extend_days": 30},
    }.get(action, {})
    ids = [e.pk for e in rows]
    preview = roster_preview(course=course, action=action, enrollment_ids=ids, email_students=email, **options)
    result = roster_apply(actor=platform_admin, course=course, action=action, enrollment_ids=ids, email_students=email,
                          expected_fingerprint=preview.fingerprint, **options)
    assert result.changed == preview.changes and result.changed + result.unchanged == preview.count
    changed = {a for a in EnrollmentAudit.objects.filter(course=course).values_list("identifier", flat=True)}
    assert changed == {n for g in preview.groups if g.key.startswith("changed") for n in g.names}
    assert Notification.objects.filter(course=course).count() == preview.emails


def test_show_all_lists_one_outcome_in_pages_and_writes_nothing(client_for, course, course_staff, people, monkeypatch):
    import importlib

    from enrollments import views_roster

    # the module, which the package's function of the same name hides
    monkeypatch.setattr(importlib.import_module("enrollments.services.roster_preview"), "NAMED", 1)
    monkeypatch.setattr(views_roster, "BULK_PAGE", 2)
    before = written()
    client = client_for(course_staff)
    url = bulk_url(course, action="unenroll", ids=[e.pk for e in people.values()])
    options = {"expected": "4", "email_students": "on", "step": "preview"}
    page = client.post(url, options).content.decode()
    # Three will be unenrolled, one is named: a button shows them all; "already unenrolled" has no more to show.
    assert re.search(r'data-outcome="changed:"><td>will be unenrolled</td><td class="text-end">3</td><td[^>]*>ann …', page)
    assert page.count('form="bulk-show-form"') == 1 and 'name="show" value="changed:"' in page and "Show all 3" in page
    assert 'id="bulk-shown"' not in page
    first = client.post(url, {**options, "show": "changed:"}).content.decode()
    names = re.findall(r"<li>(\w+)</li>", first.split('id="bulk-shown"')[1])
    assert names == ["ann", "bea"] and "Will be unenrolled: all 3 (page 1 of 2)" in first and ">Next</button>" in first
    assert 'id="bulk-confirm">Confirm: unenroll 3 learners</button>' in first  # Confirm stays, for the same preview
    second = client.post(url, {**options, "show": "changed:", "page": "2"}).content.decode()
    assert re.findall(r"<li>(\w+)</li>", second.split('id="bulk-shown"')[1]) == ["dot"] and ">Previous</button>" in second
    assert 'id="bulk-shown"' not in client.post(url, {**options, "show": "no-such-outcome"}).content.decode()
    assert written() == before
