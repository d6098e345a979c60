"""Adding and removing unit members previews first: nothing is written until
Confirm, Confirm applies exactly the preview, and a unit that changed in
between shows the new preview instead."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enrollments.models import Enrollment, EnrollmentAudit, Notification
from organisations.models import GroupMembership, Placement, UnitKind, UnitMembership
from organisations.selectors import Target, user_placement
from organisations.services import (
    MembersPreviewStale,
    RemovePreviewStale,
    assignment_link,
    unit_members_add,
    unit_members_add_identifiers,
    unit_members_add_preview,
    unit_members_remove,
    unit_members_remove_preview,
)

from ..factories import UserFactory
from .factories import OrgUnitFactory

pytestmark = pytest.mark.django_db

WRITTEN = (UnitMembership, GroupMembership, Placement, Enrollment, EnrollmentAudit, Notification)


def _rows() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in WRITTEN}


def _placements() -> list[tuple]:
    return sorted(Placement.objects.values_list("user_id", "company_id", "department_id"))


@pytest.fixture
def sales_with_course(platform_admin, course):
    sales = OrgUnitFactory(kind=UnitKind.DEPARTMENT, name="Sales")
    assignment_link(target=Target(unit=sales), course=course, actor=platform_admin)
    return sales


def test_add_preview_writes_nothing_and_names_the_old_department(client_for, platform_admin, sales_with_course):
    support = OrgUnitFactory(kind=UnitKind.DEPARTMENT, name="Support")
    UserFactory(username="ann", department=support)
    UserFactory(username="bob")
    before, placements = _rows(), _placements()
    url = reverse("org_unit_members", args=["department", sales_with_course.pk])
    response = client_for(platform_admin).post(url, {"action": "add", "identifiers": "ann bob ghost", "email_students": "on"})
    assert response.status_code == 200
    html = response.content.decode()
    section = html.split('id="add-preview"', 1)[1].split("</section>", 1)[0]
    assert '<span class="count-added">1</span> will be added' in section
    assert '<span class="count-moved">1</span> will move from another department' in section
    assert '<span class="count-no-such-user">1</span> no such user' in section
    assert "will move from Support" in section
    assert "enrolled in the department's 1 course;" in section
    assert _rows() == before and _placements() == placements


def test_confirm_applies_the_preview(client_for, platform_admin, sales_with_course, course):
    support = OrgUnitFactory(kind=UnitKind.DEPARTMENT, name="Support")
    ann = UserFactory(username="ann", department=support)
    url = reverse("org_unit_members", args=["department", sales_with_course.pk])
    client = client_for(platform_admin)
    preview = client.post(url, {"action": "add", "identifiers": "ann ghost"}).context["preview"]
    response = client.post(url, {"action": "add_confirm", "identifiers": "ann ghost", "fingerprint": preview.fingerprint})
    assert response.status_code == 302
    shown = client.get(url).context["added"]["outcomes"]
    assert [(o["identifier"], o["outcome"]) for o in shown] == [(o.identifier, o.outcome) for o in preview.outcomes]
    ann.refresh_from_db()
    assert user_placement(user=ann).department == sales_with_course
    assert Enrollment.objects.filter(user=ann, course=course, is_active=True).exists()


def test_a_unit_changed_since_the_preview_shows_the_new_preview_and_writes_nothing(client_for, platform_admin, sales_with_course):
    support = OrgUnitFactory(kind=UnitKind.DEPARTMENT, name="Support")
    ann = UserFactory(username="ann")
    url = reverse("org_unit_members", args=["department", sales_with_course.pk])
    client = client_for(platform_admin)
    preview = client.post(url, {"action": "add", "identifiers": "ann"}).context["preview"]
    assert [o.outcome for o in preview.outcomes] == ["added"]
    # someone else places ann in Support before Confirm: she would now move from there
    unit_members_add(target=Target(unit=support), users=[ann], actor=platform_admin)
    before, placements = _rows(), _placements()
    response = client.post(url, {"action": "add_confirm", "identifiers": "ann", "fingerprint": preview.fingerprint})
    assert response.status_code == 200
    assert [(o.outcome, o.moved_from) for o in response.context["preview"].outcomes] == [("moved", "Support")]
    assert "changed since the preview" in " ".join(str(m) for m in get_messages(response.wsgi_request))
    assert _rows() == before and _placements() == placements
    # the new preview's Confirm applies it
    response = client.post(url, {"action": "add_confirm", "identifiers": "ann", "fingerprint": response.context["preview"].fingerprint})
    ann.refresh_from_db()
    assert response.status_code == 302 and user_placement(user=ann).department == sales_with_course


def test_remove_previews_then_confirms_and_a_change_in_between_writes_nothing(client_for, platform_admin, course):
    team = OrgUnitFactory(kind=UnitKind.TEAM, name="Red")
    assignment_link(target=Target(unit=team), course=course, actor=platform_admin)
    one, two = UserFactory(username="one"), UserFactory(username="two")
    unit_members_add(target=Target(unit=team), users=[one, two], actor=platform_admin)
    url = reverse("org_unit_members", args=["team", team.pk])
    client = client_for(platform_admin)
    before = _rows()
    data = {"users": [one.pk, two.pk], "also_unenroll": "on"}
    response = client.post(url, {**data, "action": "remove"})
    assert "Remove 2 members? Nothing has changed yet" in response.content.decode()
    assert _rows() == before and team.members.count() == 2
    fingerprint = response.context["remove_preview"]["fingerprint"]
    # two leaves before Confirm: the preview no longer holds
    unit_members_remove(target=Target(unit=team), users=[two], actor=platform_admin)
    before = _rows()
    response = client.post(url, {**data, "action": "remove_confirm", "fingerprint": fingerprint})
    assert response.status_code == 200 and response.context["remove_preview"]["people"] == [one]
    assert "Remove 1 member? Nothing has changed yet" in response.content.decode()
    assert _rows() == before and list(team.members.all()) == [one]
    response = client.post(url, {"users": [one.pk], "also_unenroll": "on", "action": "remove_confirm",
                                 "fingerprint": response.context["remove_preview"]["fingerprint"]})
    assert response.status_code == 302 and not team.members.exists()
    assert not Enrollment.objects.filter(user=one, course=course, is_active=True).exists()


@pytest.mark.parametrize("persona, status", [("anonymous", 302), ("learner", 403), ("course_staff", 403), ("course_admin", 403)])
def test_only_platform_admins_may_preview_or_change_unit_members(client_for, request, persona, status, platform_admin):
    user = None if persona == "anonymous" else request.getfixturevalue(persona)
    team = OrgUnitFactory(kind=UnitKind.TEAM)
    member, newcomer = UserFactory(), UserFactory()
    unit_members_add(target=Target(unit=team), users=[member], actor=platform_admin)
    fingerprint = unit_members_add_preview(target=Target(unit=team), identifiers=newcomer.username).fingerprint
    _, remove_fingerprint = unit_members_remove_preview(target=Target(unit=team), user_ids=[member.pk])
    before = _rows()
    url = reverse("org_unit_members", args=["team", team.pk])
    client = client_for(user)
    for data in ({"action": "add", "identifiers": newcomer.username},
                 {"action": "add_confirm", "identifiers": newcomer.username, "fingerprint": fingerprint},
                 {"action": "remove", "users": [member.pk]},
                 {"action": "remove_confirm", "users": [member.pk], "fingerprint": remove_fingerprint}):
        assert client.post(url, data).status_code == status, data
    assert _rows() == before and list(team.members.all()) == [member]


def test_platform_admin_is_the_persona_that_may(client_for, platform_admin):
    team = OrgUnitFactory(kind=UnitKind.TEAM)
    newcomer = UserFactory()
    url = reverse("org_unit_members", args=["team", team.pk])
    assert client_for(platform_admin).post(url, {"action": "add", "identifiers": newcomer.username}).status_code == 200


def test_group_add_preview_writes_nothing(client_for, platform_admin):
    from organisations.models import Group

    group = Group.objects.create(name="Leaders")
    person = UserFactory()
    before = _rows()
    response = client_for(platform_admin).post(reverse("org_unit_members", args=["group", group.pk]), {"action": "add", "identifiers": person.username})
    assert [o.outcome for o in response.context["preview"].outcomes] == ["added"]
    assert _rows() == before


def test_stale_add_raises_in_the_service_with_the_new_preview(platform_admin):
    team = OrgUnitFactory(kind=UnitKind.TEAM)
    person = UserFactory()
    preview = unit_members_add_preview(target=Target(unit=team), identifiers=person.username)
    unit_members_add(target=Target(unit=team), users=[person], actor=platform_admin)
    with pytest.raises(MembersPreviewStale) as stale:
        unit_members_add_identifiers(target=Target(unit=team), identifiers=person.username, actor=platform_admin,
                                     expected_fingerprint=preview.fingerprint)
    assert [o.outcome for o in stale.value.preview.outcomes] == ["already a member"]
    with pytest.raises(RemovePreviewStale):
        unit_members_remove(target=Target(unit=team), users=[person], actor=platform_admin, expected_fingerprint="not the preview's")
    assert list(team.members.all()) == [person]


# Starting states: 0 nowhere, 1 in the target department, 2 in another department; plus names that match nobody.
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(states=st.lists(st.sampled_from([0, 1, 2]), min_size=1, max_size=5), ghosts=st.integers(0, 2), kind=st.sampled_from(["department", "team"]))
def test_confirm_equals_preview_for_random_lists_and_states(platform_admin, states, ghosts, kind):
    target_unit = OrgUnitFactory(kind=kind)
    other = OrgUnitFactory(kind=kind)
    people = [UserFactory() for _ in states]
    for person, state in zip(people, states, strict=True):
        if state:
            unit_members_add(target=Target(unit=target_unit if state == 1 else other), users=[person], actor=platform_admin)
    names = [p.username for p in people] + [f"ghost{i}" for i in range(ghosts)] + [people[0].email]
    target = Target(unit=target_unit)
    preview = unit_members_add_preview(target=target, identifiers=names)
    done = unit_members_add_identifiers(target=target, identifiers=names, actor=platform_admin, expected_fingerprint=preview.fingerprint)
    assert [(o.identifier, o.outcome, o.moved_from) for o in done.outcomes] == [(o.identifier, o.outcome, o.moved_from) for o in preview.outcomes]
    assert set(target.members().values_list("pk", flat=True)) == {p.pk for p in people}
