"""Group leaders and managers (organisations/rules.py): the predicate for one
group or person and the list for pages must never disagree."""

import pytest
from django.contrib.auth.models import AnonymousUser

from organisations.models import Group
from organisations.rules import can_manage_group, groups_led_by, is_manager, is_own_report, team_reports

from ..factories import UserFactory

pytestmark = pytest.mark.django_db


def test_group_predicate_and_list_agree(platform_admin, learner):
    leader = UserFactory(username="leader")
    led, other = Group.objects.create(name="Led"), Group.objects.create(name="Other")
    led.leaders.add(leader)
    gone = UserFactory(username="gone", is_active=False)
    led.leaders.add(gone)
    for person in (platform_admin, leader, learner, gone, AnonymousUser()):
        listed = set(groups_led_by(user=person))
        for group in (led, other):
            assert can_manage_group(person, group) is (group in listed), (person, group)
    assert list(groups_led_by(user=leader)) == [led]
    assert set(groups_led_by(user=platform_admin)) == {led, other}


def test_manager_predicates_and_list_agree(learner):
    boss = UserFactory(username="boss")
    report = UserFactory(username="report", manager=boss)
    left = UserFactory(username="left", manager=boss, is_active=False)
    stranger = UserFactory(username="stranger")
    assert list(team_reports(manager=boss)) == [report]
    for person in (report, left, stranger, learner):
        assert is_own_report(boss, person) is (person in set(team_reports(manager=boss))), person
    assert is_manager(boss) and not is_manager(report) and not is_manager(AnonymousUser())
    UserFactory(username="only", manager=stranger, is_active=False)
    assert not is_manager(stranger)  # inactive reports do not make a manager
