"""The dashboard at / : current courses, courses managed, groups led."""

import pytest

from tests.factories import EnrollmentFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_learner_sees_current_courses_only(client_for, course, learner):
    EnrollmentFactory(user=learner, course=course)
    response = client_for(learner).get("/")
    html = response.content.decode()
    assert course.display_name in html
    assert "Courses you manage" not in html and 'id="led-groups"' not in html


def test_team_member_gets_links_to_the_dashboards_they_manage(client_for, course, course_staff):
    html = client_for(course_staff).get("/").content.decode()
    assert f"/courses/{course.key}/instructor/info/" in html


def test_group_leader_gets_a_link_to_the_group_codes(client_for):
    from organisations.models import Group

    leader = UserFactory(username="leader")
    group = Group.objects.create(name="Night shift")
    group.leaders.add(leader)
    html = client_for(leader).get("/").content.decode()
    assert "Night shift" in html and f"/groups/{group.pk}/codes/" in html
