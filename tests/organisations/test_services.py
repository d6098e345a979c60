import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from enrollments.models import Enrollment, EnrollmentAudit, Source
from enrollments.services import enrollment_batch_update
from organisations.models import Assignment, EnrollmentOrigin, EnrollmentRule, Placement, UnitKind
from organisations.selectors import Target, assignment_plan, rule_plan, user_placement
from organisations.services import (
    assignment_apply,
    assignment_link,
    assignment_unlink,
    assignment_unlink_preview,
    plans,
    rule_apply,
    rule_preview,
    rule_save,
    unit_members_add,
    unit_members_remove,
    user_joined,
    user_profile_update,
)

from ..codes.factories import GroupFactory
from ..factories import CourseFactory, UserFactory
from .factories import OrgUnitFactory

pytestmark = pytest.mark.django_db


def active(course):
    return set(Enrollment.objects.filter(course=course, is_active=True).values_list("user__username", flat=True))


def link(target, actor, **what):
    assignment = assignment_link(target=target, actor=actor, **what)
    assignment_apply(target=target, actor=actor, **what)
    return assignment


def make_target(kind):
    if kind == UnitKind.GROUP:
        return Target(group=GroupFactory())
    return Target(unit=OrgUnitFactory(kind=kind))


@pytest.mark.parametrize("kind", [k.value for k in UnitKind])
def test_assignment_enrolls_present_and_future_members(kind, course, platform_admin):
    target = make_target(kind)
    present, future, outsider = UserFactory(username="present"), UserFactory(username="future"), UserFactory(username="outsider")
    unit_members_add(target=target, users=[present], actor=platform_admin)
    link(target, platform_admin, course=course)
    assert active(course) == {"present"}
    audit = EnrollmentAudit.objects.get(course=course, user=present)
    assert audit.source == Source.UNIT and target.obj.name in audit.reason
    unit_members_add(target=target, users=[future], actor=platform_admin)
    assert active(course) == {"present", "future"}
    assert outsider.username not in active(course)
    assert set(EnrollmentOrigin.objects.filter(origin=target.origin).values_list("user__username", flat=True)) == {"present", "future"}


def test_qualification_bundle_reaches_units_and_members(course, other_course, platform_admin):
    qual = Target(unit=OrgUnitFactory(kind=UnitKind.QUALIFICATION, name="Forklift"))
    dept = Target(unit=OrgUnitFactory(kind=UnitKind.DEPARTMENT))
    ann, bob = UserFactory(username="ann"), UserFactory(username="bob")
    unit_members_add(target=dept, users=[ann], actor=platform_admin)
    unit_members_add(target=qual, users=[bob], actor=platform_admin)
    link(qual, platform_admin, course=course)
    link(dept, platform_admin, qualification=qual.unit)
    assert active(course) == {"ann", "bob"}
    # a course added to the bundle later reaches the unit it is assigned to
    link(qual, platform_admin, course=other_course)
    assert active(other_course) == {"ann", "bob"}


def test_assignment_preview_writes_nothing_and_is_idempotent(course, platform_admin):
    target = make_target(UnitKind.TEAM)
    users = UserFactory.create_batch(3)
    unit_members_add(target=target, users=users, actor=platform_admin)
    Enrollment.objects.create(user=users[0], course=course)
    (plan,) = assignment_plan(target=target, course=course)
    assert plan.counts["enroll"] == 2 and plan.counts["already"] == 1
    assert Enrollment.objects.filter(course=course).count() == 1
    link(target, platform_admin, course=course)
    audits = EnrollmentAudit.objects.count()
    assert assignment_apply(target=target, course=course, actor=platform_admin) == {"enrolled": 0, "reactivated": 0, "unenrolled": 0}
    assert EnrollmentAudit.objects.count() == audits


def test_unlink_without_also_unenroll_keeps_everyone(course, platform_admin):
    target = make_target(UnitKind.DEPARTMENT)
    unit_members_add(target=target, users=[UserFactory(username="a")], actor=platform_admin)
    assignment = link(target, platform_admin, course=course)
    assignment_unlink(assignment=assignment, also_unenroll=False, actor=platform_admin)
    assert active(course) == {"a"}
    assert not Assignment.objects.exists()


def test_unlink_with_also_unenroll_ends_only_that_units_enrollments(course, platform_admin, course_staff):
    unit, other = make_target(UnitKind.DEPARTMENT), make_target(UnitKind.TEAM)
    from_unit, by_hand, via_other, later_by_hand = (UserFactory(username=n) for n in ("fromunit", "byhand", "viaother", "laterbyhand"))
    enrollment_batch_update(course=course, identifiers=["byhand"], action="enroll", auto_enroll=True, email_students=False, actor=course_staff)
    unit_members_add(target=unit, users=[from_unit, by_hand, via_other, later_by_hand], actor=platform_admin)
    unit_members_add(target=other, users=[via_other], actor=platform_admin)
    assignment = link(unit, platform_admin, course=course)
    link(other, platform_admin, course=course)
    # unenrolled and enrolled again by hand: no longer the unit's enrollment
    for action in ("unenroll", "enroll"):
        enrollment_batch_update(course=course, identifiers=["laterbyhand"], action=action, auto_enroll=True, email_students=False, actor=course_staff)
    assert active(course) == {"fromunit", "byhand", "viaother", "laterbyhand"}
    (plan,) = assignment_unlink_preview(assignment=assignment)
    assert plan.names("unenroll") == [f"fromunit (Test {from_unit.last_name})"] and plan.count("unenroll") == 1
    assert Assignment.objects.filter(pk=assignment.pk).exists()
    assignment_unlink(assignment=assignment, also_unenroll=True, actor=platform_admin)
    assert active(course) == {"byhand", "viaother", "laterbyhand"}


def test_member_removal_unenrolls_only_when_asked(course, platform_admin):
    target = make_target(UnitKind.FUNCTION)
    a, b = UserFactory(username="a"), UserFactory(username="b")
    unit_members_add(target=target, users=[a, b], actor=platform_admin)
    link(target, platform_admin, course=course)
    unit_members_remove(target=target, users=[a], actor=platform_admin)
    assert active(course) == {"a", "b"}
    unit_members_remove(target=target, users=[b], actor=platform_admin, also_unenroll=True)
    assert active(course) == {"a"}


def test_company_is_single_valued(platform_admin):
    first, second = make_target(UnitKind.COMPANY), make_target(UnitKind.COMPANY)
    user = UserFactory()
    unit_members_add(target=first, users=[user], actor=platform_admin)
    unit_members_add(target=second, users=[user], actor=platform_admin)
    user.refresh_from_db()
    assert user_placement(user=user).company == second.unit


def make_rule(courses, actor, **criteria):
    rule = EnrollmentRule(name=criteria.pop("name", "Rule"), **criteria)
    rule_save(rule=rule, courses=courses, actor=actor)
    rule_apply(rule=rule, actor=actor)
    return rule


def test_rule_with_several_criteria_matches_exactly(course, platform_admin):
    company, dept, team, function = (OrgUnitFactory(kind=k) for k in (UnitKind.COMPANY, UnitKind.DEPARTMENT, UnitKind.TEAM, UnitKind.FUNCTION))
    group = GroupFactory()
    boss = UserFactory(username="boss")
    today = timezone.localdate()

    def person(name, **over):
        attrs = {"company": company, "department": dept, "language": "nl", "manager": boss, "date_added": today - datetime.timedelta(days=3)}
        attrs.update(over)
        user = UserFactory(username=name, **{k: v for k, v in attrs.items() if k not in ("team", "function", "group")})
        if over.get("team", team):
            unit_members_add(target=Target(unit=team), users=[user], actor=platform_admin)
        if over.get("function", function):
            unit_members_add(target=Target(unit=function), users=[user], actor=platform_admin)
        if over.get("group", group):
            unit_members_add(target=Target(group=group), users=[user], actor=platform_admin)
        return user

    person("match")
    person("othercompany", company=OrgUnitFactory(kind=UnitKind.COMPANY))
    person("nodept", department=None)
    person("noteam", team=False)
    person("nofunction", function=False)
    person("nogroup", group=False)
    person("english", language="en")
    person("old", date_added=today - datetime.timedelta(days=30))
    person("otherboss", manager=UserFactory())
    make_rule(
        [course], platform_admin, company=company, department=dept, team=team, function=function, group=group,
        language="NL", added_within_days=7, added_after=today - datetime.timedelta(days=10), added_before=today, manager=boss,
    )
    assert active(course) == {"match"}
    audit = EnrollmentAudit.objects.get(course=course)
    assert audit.source == Source.RULE and audit.reason == "Rule: Rule"


def test_retroactive_off_enrolls_only_newcomers(course, platform_admin):
    dept = OrgUnitFactory()
    UserFactory(username="before", department=dept)
    make_rule([course], platform_admin, department=dept, retroactive=False)
    assert active(course) == set()
    newcomer = UserFactory(username="newcomer")
    user_profile_update(user=newcomer, actor=platform_admin, department=dept)
    assert active(course) == {"newcomer"}


def test_retroactive_on_enrolls_present_and_new_accounts(course, platform_admin):
    UserFactory(username="before", language="fr")
    make_rule([course], platform_admin, language="fr")
    assert active(course) == {"before"}
    user_joined(user=UserFactory(username="signup", language="fr"))
    assert active(course) == {"before", "signup"}


def test_people_who_stop_matching(course, other_course, platform_admin, course_staff):
    dept, elsewhere = OrgUnitFactory(), OrgUnitFactory()
    keep, leave, handmade = (UserFactory(username=n, department=dept) for n in ("keep", "leave", "handmade"))
    enrollment_batch_update(course=course, identifiers=["handmade"], action="enroll", auto_enroll=True, email_students=False, actor=course_staff)
    make_rule([course], platform_admin, department=dept, unenroll_unmatched=True)
    lazy = make_rule([other_course], platform_admin, department=dept, name="Keeps people")
    assert active(course) == {"keep", "leave", "handmade"}
    for user in (leave, handmade):
        user_profile_update(user=user, actor=platform_admin, department=elsewhere)
    # the rule's own enrollment ends; the one made by hand stays; the other rule keeps all
    assert active(course) == {"keep", "handmade"}
    assert active(other_course) == {"keep", "leave", "handmade"}
    assert not lazy.unenroll_unmatched


def test_hand_made_unenrollment_not_undone(course, platform_admin, course_staff):
    dept = OrgUnitFactory()
    UserFactory(username="quitter", department=dept)
    UserFactory(username="stayer", department=dept)
    rule = make_rule([course], platform_admin, department=dept)
    enrollment_batch_update(course=course, identifiers=["quitter"], action="unenroll", auto_enroll=False, email_students=False, actor=course_staff)
    plan = rule_plan(rule=rule)
    assert plan.counts["removed_by_hand"] == 1 and plan.counts["already"] == 1 and plan.counts["enroll"] == 0
    rule_apply(rule=rule, actor=platform_admin)
    assert active(course) == {"stayer"}


def test_rule_reactivates_what_it_unenrolled_and_is_idempotent(course, platform_admin):
    dept, elsewhere = OrgUnitFactory(), OrgUnitFactory()
    user = UserFactory(username="mover", department=dept)
    make_rule([course], platform_admin, department=dept, unenroll_unmatched=True)
    user_profile_update(user=user, actor=platform_admin, department=elsewhere)
    assert active(course) == set()
    user_profile_update(user=user, actor=platform_admin, department=dept)
    assert active(course) == {"mover"}
    rule = EnrollmentRule.objects.get()
    audits = EnrollmentAudit.objects.count()
    assert rule_apply(rule=rule, actor=platform_admin) == {"enrolled": 0, "reactivated": 0, "unenrolled": 0}
    assert EnrollmentAudit.objects.count() == audits


def test_rule_preview_writes_nothing(course, platform_admin):
    dept = OrgUnitFactory()
    anns = [UserFactory(username=f"ann{i}", department=dept, first_name="Ann", last_name=f"Lee{i}") for i in range(3)]
    anns[2].last_name = anns[2].first_name = ""
    anns[2].save()
    rule = EnrollmentRule(name="Preview", department=dept)
    plan = rule_preview(rule=rule, courses=[course])
    assert plan.counts["enroll"] == 3 and plan.names("enroll") == ["ann0 (Ann Lee0)", "ann1 (Ann Lee1)", "ann2"]
    assert not EnrollmentRule.objects.exists() and not Enrollment.objects.exists()


def _rule_queries(n, course, actor):
    dept = OrgUnitFactory()
    users = UserFactory.build_batch(n)
    from django.contrib.auth import get_user_model

    get_user_model().objects.bulk_create(users)
    Placement.objects.bulk_create([Placement(user=u, department=dept) for u in users])
    rule = EnrollmentRule(name=f"Rule {n}", department=dept)
    rule_save(rule=rule, courses=[course], actor=actor)
    with CaptureQueriesContext(connection) as ctx:
        rule_apply(rule=rule, actor=actor)
    assert Enrollment.objects.filter(course=course).count() == n
    return len(ctx.captured_queries)


@pytest.mark.postgresql  # SQLite splits bulk inserts by its variable limit
def test_rule_query_count_does_not_grow(platform_admin, monkeypatch):
    monkeypatch.setattr(plans, "CHUNK", 10_000)
    small = _rule_queries(100, CourseFactory(), platform_admin)
    large = _rule_queries(5000, CourseFactory(), platform_admin)
    assert small == large


def test_signup_applies_rules_to_the_new_account(course, platform_admin, client):
    make_rule([course], platform_admin, added_within_days=1, name="Newcomers")
    response = client.post("/accounts/signup/", {"username": "fresh", "email": "fresh@example.com", "password1": "a-Long-pass-987", "password2": "a-Long-pass-987"})
    assert response.status_code in (200, 302)
    assert "fresh" in active(course)


def test_periodic_refresh_unenrolls_people_who_aged_out(course, platform_admin):
    from organisations.services import rules_refresh

    UserFactory(username="recent", date_added=timezone.localdate())
    old = UserFactory(username="old", date_added=timezone.localdate())
    rule = make_rule([course], platform_admin, added_within_days=7, unenroll_unmatched=True)
    assert {"recent", "old"} <= active(course)
    type(old).objects.filter(pk=old.pk).update(date_added=timezone.localdate() - datetime.timedelta(days=30))
    rules_refresh()
    assert "old" not in active(course) and "recent" in active(course)
    assert rule.is_active


def test_team_enroll_refuses_a_closed_course_and_writes_nothing(course):
    from django.core.exceptions import PermissionDenied, ValidationError

    from organisations.services import team_enroll

    from ..factories import CourseFactory, CourseRoleFactory

    boss = UserFactory()
    mine = UserFactory(manager=boss)
    closed = CourseFactory(display_name="Closed", self_enrollment=False)
    with pytest.raises(ValidationError) as refused:
        team_enroll(manager=boss, users=[mine], courses=[course, closed])
    assert refused.value.messages == ["Closed does not take self-enrollment; its course team enrolls its learners."]
    assert not Enrollment.objects.exists() and not EnrollmentAudit.objects.exists()
    with pytest.raises(PermissionDenied):
        team_enroll(manager=boss, users=[UserFactory()], courses=[course])
    # on the course team, the manager may enroll as on the Membership tab
    CourseRoleFactory(course=closed, user=boss)
    assert team_enroll(manager=boss, users=[mine], courses=[course, closed]) == {"enrolled": 2, "already": 0}


def test_team_enroll_keeps_a_course_within_its_cap_of_four(course):
    """Issue 13 item 5: My Team must not fill a course of cap 4 with 11 learners."""
    from django.core.exceptions import ValidationError

    from organisations.services import team_enroll

    from ..factories import CourseRoleFactory, EnrollmentFactory

    EnrollmentFactory.create_batch(2, course=course)
    course.max_enrollments = 4
    course.save()
    boss = UserFactory()
    reports = [UserFactory(manager=boss) for _ in range(9)]
    with pytest.raises(ValidationError) as refused:
        team_enroll(manager=boss, users=reports, courses=[course])
    assert refused.value.messages == ["Enrollment 101 has 2 seats left; you chose 9 people not yet enrolled."]
    assert Enrollment.objects.filter(course=course, is_active=True).count() == 2
    assert team_enroll(manager=boss, users=reports[:2], courses=[course]) == {"enrolled": 2, "already": 0}
    with pytest.raises(ValidationError, match="0 seats left"):
        team_enroll(manager=boss, users=reports[2:3], courses=[course])
    # a manager on the course team enrolls as the Membership tab does: past the cap
    CourseRoleFactory(course=course, user=boss)
    assert team_enroll(manager=boss, users=reports[2:], courses=[course]) == {"enrolled": 7, "already": 0}
    assert Enrollment.objects.filter(course=course, is_active=True).count() == 11


def test_member_outcomes_decide_without_the_database():
    from types import SimpleNamespace

    from enrollment_site.lib.identifiers import parse_identifiers
    from organisations.services import member_outcomes

    def person(pk, username):
        return SimpleNamespace(pk=pk, username=username, get_full_name=lambda: username.title())

    ann, bob, cat = person(1, "ann"), person(2, "bob"), person(3, "cat")
    idents = parse_identifiers("ann bob cat ghost x@@y ann@example.com")
    resolved = list(zip(idents, [ann, bob, cat, None, None, ann], strict=True))
    outcomes = member_outcomes(resolved=resolved, already={3}, previous={1: "Support"})
    assert [o.text for o in outcomes] == ["moved from Support", "added", "already a member", "no such user", "invalid", "moved from Support"]
