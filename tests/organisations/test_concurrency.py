"""Two administrators doing the same thing at once, on PostgreSQL with real
threads: confirming one retroactive rule, adding the same people to a team.
Each person is enrolled, audited, mailed and counted once, however the two
runs interleave, and each administrator is told what their own run did."""

from collections import Counter

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

import enrollments.services.batch
import organisations.services.membership
from enrollments.models import Enrollment, EnrollmentAudit, State
from organisations.models import EnrollmentOrigin, EnrollmentRule, Placement, UnitKind, UnitMembership
from organisations.selectors import Target
from organisations.services import MemberOutcome, assignment_link, rule_apply, rule_save, unit_members_add_identifiers

from ..factories import CourseFactory, UserFactory
from ..races import call_together, met, slowed
from .factories import OrgUnitFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgresql,  # real concurrency needs a server database
]

PEOPLE = 300


def test_two_simultaneous_confirms_of_a_rule_enroll_audit_and_mail_each_person_once(monkeypatch):
    course = CourseFactory()
    admin = UserFactory(is_staff=True, is_superuser=True)
    department = OrgUnitFactory()
    users = get_user_model().objects.bulk_create(UserFactory.build_batch(PEOPLE))
    Placement.objects.bulk_create([Placement(user=u, department=department) for u in users])
    rule = rule_save(rule=EnrollmentRule(name="Everyone in the department", department=department, retroactive=True),
                     courses=[course], actor=admin)
    # Both runs arrive at the course's write lock together: the worst case, made
    # certain. The second then reads what the first wrote.
    monkeypatch.setattr(enrollments.services.batch, "course_write_lock", met(enrollments.services.batch.course_write_lock, 2))

    totals = call_together([lambda: rule_apply(rule=rule, actor=admin, email_students=True)] * 2)

    assert all(isinstance(t, dict) for t in totals), totals
    assert sorted(t["enrolled"] for t in totals) == [0, PEOPLE]  # one run enrolled everyone, the other nobody
    assert Enrollment.objects.filter(course=course, is_active=True).count() == PEOPLE
    assert Counter(EnrollmentAudit.objects.filter(course=course).values_list("user_id", "state_before", "state_after")) == Counter(
        (u.pk, State.NONE, State.ENROLLED) for u in users
    )
    assert Counter(m.to[0] for m in mail.outbox) == Counter(u.email for u in users)
    assert EnrollmentOrigin.objects.filter(course=course).count() == PEOPLE


def test_two_administrators_adding_the_same_people_to_a_team_at_once_are_told_added_once(monkeypatch):
    """Both runs start together and are slowed before they write (at the
    rules snapshot every add takes first), so each reads before the other writes."""
    course, admin = CourseFactory(), UserFactory(is_staff=True, is_superuser=True)
    team = OrgUnitFactory(kind=UnitKind.TEAM)
    assignment_link(target=Target(unit=team), course=course, actor=admin)
    users = get_user_model().objects.bulk_create(UserFactory.build_batch(50))
    seen: list = []
    membership = organisations.services.membership
    monkeypatch.setattr(membership, "rules_snapshot", slowed(membership.rules_snapshot, seen, "user_ids"))

    added = call_together([
        lambda: unit_members_add_identifiers(target=Target(unit=team), identifiers=[u.username for u in users], actor=admin,
                                             email_students=True)
    ] * 2)

    assert len(seen) == 2, added
    assert sorted(list(a.counts.items()) for a in added) == [[(MemberOutcome.ADDED, 50)], [(MemberOutcome.ALREADY, 50)]]
    assert UnitMembership.objects.filter(unit=team).count() == 50
    assert sorted(a.enrollments["enrolled"] for a in added) == [0, 50]
    assert EnrollmentAudit.objects.filter(course=course).count() == 50
    assert Counter(m.to[0] for m in mail.outbox) == Counter(u.email for u in users)
