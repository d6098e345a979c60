import pytest
from django.urls import reverse

from enrollments.models import Enrollment, EnrollmentAudit, Source
from organisations.models import Assignment, EnrollmentRule, OrgUnit, UnitKind
from organisations.selectors import Target, user_placement
from organisations.services import unit_members_add

from ..factories import UserFactory
from .factories import OrgUnitFactory

pytestmark = pytest.mark.django_db


def _confirm_add(client, url, data, **kwargs):
    """Add members as the page does: preview (nothing written), then Confirm."""
    preview = client.post(url, {**data, "action": "add"})
    assert preview.status_code == 200
    return client.post(url, {**data, "action": "add_confirm", "fingerprint": preview.context["preview"].fingerprint}, **kwargs)


def _confirm_remove(client, url, data, **kwargs):
    """Remove members as the page does: preview (nothing written), then Confirm."""
    preview = client.post(url, {**data, "action": "remove"})
    assert preview.status_code == 200
    return client.post(url, {**data, "action": "remove_confirm", "fingerprint": preview.context["remove_preview"]["fingerprint"]}, **kwargs)


def test_only_platform_admins_reach_organisation(client_for, learner, course_staff, platform_admin):
    unit = OrgUnitFactory()
    urls = [
        reverse("org_unit_list"), reverse("org_unit_create", args=["team"]), reverse("org_unit_edit", args=["department", unit.pk]),
        reverse("org_unit_members", args=["department", unit.pk]), reverse("org_unit_assign", args=["department", unit.pk]),
        reverse("org_rule_list"), reverse("org_rule_create"), reverse("org_import"), reverse("org_user_page", args=[learner.pk]),
        reverse("org_user_list"),
    ]
    for user in (learner, course_staff):
        client = client_for(user)
        for url in urls:
            assert client.get(url).status_code == 403, url
    assert client_for(None).get(urls[0]).status_code == 302
    client = client_for(platform_admin)
    for url in urls:
        assert client.get(url).status_code == 200, url


def test_unit_pages_create_assign_preview_confirm(client_for, platform_admin, course):
    client = client_for(platform_admin)
    response = client.post(reverse("org_unit_create", args=["department"]), {"name": "Sales"})
    dept = OrgUnit.objects.get(kind=UnitKind.DEPARTMENT, name="Sales")
    assert response.status_code == 302
    members = [UserFactory(first_name=f"Mem{i}") for i in range(3)]
    response = _confirm_add(client, reverse("org_unit_members", args=["department", dept.pk]),
                            {"identifiers": " ".join(u.username for u in members[:2])})
    assert response.status_code == 302
    assign = reverse("org_unit_assign", args=["department", dept.pk])
    response = client.post(assign, {"action": "preview", "course": course.pk})
    assert b'class="count-enroll">2<' in response.content and b"Mem0" in response.content
    assert not Enrollment.objects.exists() and not Assignment.objects.exists()
    response = client.post(assign, {"action": "confirm", "course": course.pk})
    assert response.status_code == 302
    assert Enrollment.objects.filter(course=course, is_active=True).count() == 2
    _confirm_add(client, reverse("org_unit_members", args=["department", dept.pk]), {"identifiers": members[2].email})
    assert Enrollment.objects.filter(course=course, is_active=True).count() == 3
    assignment = Assignment.objects.get()
    response = client.post(assign, {"action": "unlink_preview", "assignment": assignment.pk, "also_unenroll": "on"})
    assert b'class="count-unenroll">3<' in response.content
    client.post(assign, {"action": "unlink_confirm", "assignment": assignment.pk, "also_unenroll": "on"})
    assert not Enrollment.objects.filter(course=course, is_active=True).exists()


def test_large_assignment_runs_as_job(client_for, platform_admin, course, settings, django_capture_on_commit_callbacks):
    settings.ORGANISATION_SYNC_LIMIT = 1
    team = OrgUnitFactory(kind=UnitKind.TEAM)
    unit_members_add(target=Target(unit=team), users=UserFactory.create_batch(3), actor=platform_admin)
    client = client_for(platform_admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("org_unit_assign", args=["team", team.pk]), {"action": "confirm", "course": course.pk})
    assert b"progress-bar" in response.content
    assert Enrollment.objects.filter(course=course, is_active=True).count() == 3
    status = client.get(reverse("org_job_status", args=[response.context["job"].public_id]), HTTP_HX_REQUEST="true")
    assert status.status_code == 286 and b"Succeeded" in status.content


def test_rule_page_preview_then_confirm(client_for, platform_admin, course):
    dept = OrgUnitFactory()
    UserFactory.create_batch(2, department=dept, first_name="Rita")
    client = client_for(platform_admin)
    data = {"name": "Sales onboarding", "courses": [course.pk], "department": dept.pk, "retroactive": "on", "is_active": "on"}
    response = client.post(reverse("org_rule_create"), {**data, "action": "preview"})
    assert b'class="count-enroll">2<' in response.content and b"Rita" in response.content
    assert not EnrollmentRule.objects.exists() and not Enrollment.objects.exists()
    response = client.post(reverse("org_rule_create"), {**data, "action": "confirm"})
    rule = EnrollmentRule.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("org_rule_edit", args=[rule.pk])
    assert Enrollment.objects.filter(course=course, is_active=True, source=Source.RULE).count() == 2


def test_rule_needs_a_criterion(client_for, platform_admin, course):
    response = client_for(platform_admin).post(reverse("org_rule_create"), {"name": "All", "courses": [course.pk], "action": "preview"})
    assert b"Set at least one criterion" in response.content


def test_user_page_enrolls_in_several_courses(client_for, platform_admin, learner, course, other_course):
    client = client_for(platform_admin)
    page = client.get(reverse("org_user_page", args=[learner.pk]))
    assert page.status_code == 200 and "This field is required." not in page.content.decode()
    url = reverse("org_user_page", args=[learner.pk])
    response = client.post(url, {"action": "enroll", "courses": [course.pk, other_course.pk]})
    assert response.status_code == 302 and response["Location"] == url
    page = client.get(url)
    html = page.content.decode()
    assert "2 enrollments made." in html and "This field is required." not in html
    assert set(Enrollment.objects.filter(user=learner, is_active=True).values_list("course__key", flat=True)) == {course.key, other_course.key}
    assert course.display_name.encode() in page.content and b"Admin" in page.content
    # nothing chosen: the error is next to Courses, and nothing changes
    response = client.post(url, {"action": "enroll"})
    assert response.status_code == 200 and "This field is required." in response.content.decode()
    assert Enrollment.objects.filter(user=learner).count() == 2


def test_manager_enrolls_only_own_reports(client_for, course, other_course):
    boss = UserFactory(username="boss")
    mine = UserFactory(username="mine", manager=boss)
    theirs = UserFactory(username="theirs", manager=UserFactory())
    client = client_for(boss)
    page = client.get(reverse("my_team"))
    assert b"mine" in page.content and b"theirs" not in page.content
    response = client.post(reverse("my_team"), {"users": [theirs.pk], "courses": [course.pk]})
    assert response.status_code == 403
    response = client.post(reverse("my_team"), {"users": [mine.pk, theirs.pk], "courses": [course.pk]})
    assert response.status_code == 403
    assert not Enrollment.objects.exists()
    response = client.post(reverse("my_team"), {"users": [mine.pk], "courses": [course.pk, other_course.pk]})
    assert response.status_code == 302
    assert Enrollment.objects.filter(user=mine, is_active=True).count() == 2
    audit = EnrollmentAudit.objects.filter(user=mine).first()
    assert audit.actor == boss and audit.source == Source.TEAM


def test_my_team_is_for_managers_only(client_for, learner, course):
    """Someone nobody reports to finds no My Team link in the menu and a 403 at /team/."""
    client = client_for(learner)
    home = client.get(reverse("home")).content.decode()
    assert reverse("my_team") not in home and "My Team" not in home
    assert client.get(reverse("my_team")).status_code == 403
    assert client.post(reverse("my_team"), {"users": [learner.pk], "courses": [course.pk]}).status_code == 403
    assert not Enrollment.objects.exists()
    # a deactivated report does not make a manager either
    UserFactory(manager=learner, is_active=False)
    assert client.get(reverse("my_team")).status_code == 403
    UserFactory(manager=learner)
    assert reverse("my_team") in client.get(reverse("home")).content.decode()
    assert client.get(reverse("my_team")).status_code == 200


def test_my_team_offers_only_courses_open_to_reports(client_for, course):
    from django.utils import timezone

    from ..factories import CourseFactory, CourseRoleFactory

    past = timezone.now() - timezone.timedelta(days=1)
    boss = UserFactory(username="boss")
    UserFactory(username="mine", manager=boss)
    closed = [
        CourseFactory(display_name="Invitation course", invitation_only=True),
        CourseFactory(display_name="Team-only course", self_enrollment=False),
        CourseFactory(display_name="Keyed course", enrollment_key="secret"),
        CourseFactory(display_name="Ended course", enrollment_end=past),
        CourseFactory(display_name="Future course", enrollment_start=timezone.now() + timezone.timedelta(days=1)),
        CourseFactory(display_name="Full course", max_enrollments=0),
    ]
    own = CourseFactory(display_name="Boss runs this", invitation_only=True)
    CourseRoleFactory(course=own, user=boss)
    html = client_for(boss).get(reverse("my_team")).content.decode()
    assert course.display_name in html and "Boss runs this" in html
    for c in closed:
        assert c.display_name not in html, c.display_name


def test_my_team_refuses_a_closed_course_in_a_crafted_post(client_for, course):
    closed = course.__class__.objects.create(key="course-v1:Acme+CLOSED+2026", display_name="Closed one", invitation_only=True)
    boss = UserFactory(username="boss")
    mine = UserFactory(username="mine", manager=boss)
    response = client_for(boss).post(reverse("my_team"), {"users": [mine.pk], "courses": [course.pk, closed.pk]})
    assert response.status_code == 200
    assert "That course is not open to your team" in response.content.decode()
    assert not Enrollment.objects.exists() and not EnrollmentAudit.objects.exists()


def test_my_team_refuses_more_people_than_seats_left(client_for, course):
    from ..factories import EnrollmentFactory

    course.max_enrollments = 2
    course.save()
    EnrollmentFactory(course=course)
    boss = UserFactory(username="boss")
    reports = [UserFactory(manager=boss) for _ in range(2)]
    client = client_for(boss)
    response = client.post(reverse("my_team"), {"users": [u.pk for u in reports], "courses": [course.pk]})
    html = response.content.decode()
    assert response.status_code == 200 and "Enrollment 101 has 1 seat left; you chose 2 people not yet enrolled." in html
    assert Enrollment.objects.filter(course=course).count() == 1
    response = client.post(reverse("my_team"), {"users": [reports[0].pk], "courses": [course.pk]}, follow=True)
    assert "1 enrollment made." in response.content.decode()
    assert Enrollment.objects.filter(course=course, is_active=True).count() == 2


def test_user_page_profile_change_applies_unit_courses(client_for, platform_admin, learner, course):
    from organisations.services import assignment_link

    dept = OrgUnitFactory(kind=UnitKind.DEPARTMENT)
    assignment_link(target=Target(unit=dept), course=course, actor=platform_admin)
    response = client_for(platform_admin).post(reverse("org_user_page", args=[learner.pk]), {"action": "profile", "department": dept.pk, "language": "de"})
    assert response.status_code == 302
    learner.refresh_from_db()
    assert user_placement(user=learner).department == dept and learner.language == "de"
    assert Enrollment.objects.filter(user=learner, course=course, is_active=True, source=Source.UNIT).exists()


def test_admin_pages(client_for, platform_admin):
    client = client_for(platform_admin)
    for name in ("orgunit", "unitmembership", "assignment", "enrollmentrule", "orgimport", "orgjob", "enrollmentorigin"):
        assert client.get(reverse(f"admin:organisations_{name}_changelist")).status_code == 200, name
    assert client.get(reverse("admin:organisations_orgunit_add")).status_code == 200
    assert client.get(reverse("admin:accounts_user_change", args=[platform_admin.pk])).status_code == 200


def test_a_job_whose_worker_is_lost_again_and_again_shows_as_failed(client_for, platform_admin):
    from django.utils import timezone

    from enrollment_site.celery import sweep_jobs
    from enrollment_site.lib.jobs import max_takeovers
    from organisations.models import OrgJob

    job = OrgJob.objects.create(kind=OrgJob.Kind.RULE, status=OrgJob.Status.RUNNING, started=timezone.now() - timezone.timedelta(hours=3), total=10,
                                takeovers=max_takeovers())
    sweep_jobs()  # the beat's sweep (a GET never sweeps)
    response = client_for(platform_admin).get(reverse("org_job_status", args=[job.public_id]))
    assert b"Failed" in response.content and b"worker was lost" in response.content


@pytest.mark.parametrize("kind, heading", [("company", "Companies"), ("department", "Departments"), ("function", "Functions")])
def test_unit_list_headings_are_proper_plurals(client_for, platform_admin, kind, heading):
    OrgUnitFactory(kind=kind, name="Acme unit")
    html = client_for(platform_admin).get(reverse("org_unit_list") + f"?kind={kind}").content.decode()
    assert f">{heading}</h2>" in html and "Acme unit" in html


def test_adding_to_a_department_says_who_moved_from_where(client_for, platform_admin):
    sales = OrgUnitFactory(kind=UnitKind.DEPARTMENT, name="Sales")
    support = OrgUnitFactory(kind=UnitKind.DEPARTMENT, name="Support")
    ann = UserFactory(username="ann", first_name="Ann", last_name="Lee", department=support)
    bob = UserFactory(username="bob", first_name="", last_name="")
    UserFactory(username="cat", department=sales)
    client = client_for(platform_admin)
    url = reverse("org_unit_members", args=["department", sales.pk])
    response = _confirm_add(client, url, {"identifiers": "ann, bob@example.com\ncat nobody bad@@example"})
    assert response.status_code == 302 and response["Location"] == url + "#add-results"
    html = client.get(url).content.decode()
    assert "1 added, 1 moved from another department, 1 already a member, 1 with no active account, 1 invalid; 0 enrollments made." in html
    rows = {cells[0]: cells[1:] for cells in _result_rows(html)}
    assert rows["ann"] == ["moved from Support", "ann", "Ann Lee"]
    assert rows["bob@example.com"] == ["added", "bob", ""]
    assert rows["cat"][0] == "already a member"
    assert rows["nobody"] == ["no such user", "", ""]
    assert rows["bad@@example"] == ["invalid", "", ""]
    ann.refresh_from_db()
    bob.refresh_from_db()
    assert user_placement(user=ann).department == sales and user_placement(user=bob).department == sales
    # the results are shown once; the next visit is the plain page
    assert "add-results" not in client.get(url).content.decode()


def test_unknown_names_do_not_stop_the_others(client_for, platform_admin, course):
    from organisations.services import assignment_link

    team = OrgUnitFactory(kind=UnitKind.TEAM, name="Red")
    assignment_link(target=Target(unit=team), course=course, actor=platform_admin)
    dana = UserFactory(username="dana")
    client = client_for(platform_admin)
    url = reverse("org_unit_members", args=["team", team.pk])
    response = _confirm_add(client, url, {"identifiers": "ghost dana"}, follow=True)
    html = response.content.decode()
    assert "1 added, 1 with no active account; 1 enrollment made." in html
    assert Enrollment.objects.filter(user=dana, course=course, is_active=True).exists()
    assert list(team.members.all()) == [dana]


def _result_rows(html: str) -> list[list[str]]:
    import re

    section = html.split('id="add-results"', 1)[1].split("</section>", 1)[0]
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", section, re.S) if "<td" in row]


def test_preview_names_people_by_username_and_full_name_with_everyone_behind_show_all(client_for, platform_admin, course, monkeypatch):
    from organisations.selectors import plans

    monkeypatch.setattr(plans, "PEOPLE_LISTED", 11)
    dept = OrgUnitFactory()
    UserFactory(username="nameless", first_name="", last_name="", department=dept)
    for i in range(12):
        UserFactory(username=f"rita{i:02}", first_name="Rita", last_name=f"Lane{i:02}", department=dept)
    data = {"name": "Sales onboarding", "courses": [course.pk], "department": dept.pk, "retroactive": "on", "is_active": "on", "action": "preview"}
    html = client_for(platform_admin).post(reverse("org_rule_create"), data).content.decode()
    inline = html.split('class="count-enroll">13</span>', 1)[1].split("<details", 1)[0]
    assert "(nameless, rita00 (Rita Lane00), rita01 (Rita Lane01)," in inline and ", …)" in inline
    everyone = html.split('<details class="small mt-1 plan-all">', 1)[1].split("</details>", 1)[0]
    assert "Show all 13" in everyone
    assert "<li>nameless</li>" in everyone and "<li>rita09 (Rita Lane09)</li>" in everyone and "rita10" not in everyone
    assert "… and 2 more, not listed here" in everyone


def test_counts_in_messages_are_proper_plurals(client_for, platform_admin, course):
    team = OrgUnitFactory(kind=UnitKind.TEAM)
    one, two = UserFactory(), UserFactory()
    unit_members_add(target=Target(unit=team), users=[one, two], actor=platform_admin)
    client = client_for(platform_admin)
    url = reverse("org_unit_members", args=["team", team.pk])
    html = _confirm_remove(client, url, {"users": [one.pk]}, follow=True).content.decode()
    assert "1 member removed; 0 unenrolled." in html
    html = _confirm_add(client, url, {"identifiers": one.username}, follow=True).content.decode()
    assert "1 added; 0 enrollments made." in html
    for text in ("(s)", "1 people", "1 members", "1 enrollments"):
        assert text not in html


def test_user_list_next_page_keeps_the_search(client_for, platform_admin):
    UserFactory.create_batch(51, last_name="Pagesearch")
    html = client_for(platform_admin).get(reverse("org_user_list"), {"q": "pagesearch"}).content.decode()
    assert 'aria-label="User pages"' in html
    assert 'href="?q=pagesearch&amp;page=2">Next' in html


@pytest.mark.parametrize("q", ["", "   ", "nul\x00byte", "%", "PAGESEARCH"])
def test_user_list_search_never_fails(client_for, platform_admin, q):
    match = UserFactory(last_name="Pagesearch")
    response = client_for(platform_admin).get(reverse("org_user_list"), {"q": q})
    assert response.status_code == 200
    people = list(response.context["page"])
    if q == "PAGESEARCH":
        assert people == [match]
    elif q != "%":
        assert match in people


def test_user_list_shows_company_and_department_in_a_fixed_number_of_queries(client_for, platform_admin):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(platform_admin)
    acme, sales = OrgUnitFactory(kind=UnitKind.COMPANY, name="Acme"), OrgUnitFactory(kind=UnitKind.DEPARTMENT, name="Sales")

    def page_queries():
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(reverse("org_user_list"))
        assert response.status_code == 200
        return response.content.decode(), len(ctx.captured_queries)

    UserFactory(username="placed", company=acme, department=sales)
    html, few = page_queries()
    assert "<td>Acme</td><td>Sales</td>" in html
    UserFactory.create_batch(5, company=acme)
    UserFactory.create_batch(5, department=sales)
    UserFactory.create_batch(5)
    html, many = page_queries()
    assert many == few and html.count("<td>Acme</td>") == 6


def test_admin_user_page_shows_company_and_department_read_only(client_for, platform_admin):
    person = UserFactory(company=OrgUnitFactory(kind=UnitKind.COMPANY, name="Acme"), department=OrgUnitFactory(kind=UnitKind.DEPARTMENT, name="Sales"))
    html = client_for(platform_admin).get(reverse("admin:accounts_user_change", args=[person.pk])).content.decode()
    assert "Company and department" in html and "Acme" in html and "Sales" in html
    assert 'name="placement-0-department"' not in html
