"""Two administrators confirming the same retroactive rule at once, on
PostgreSQL with real threads: each person is enrolled, audited, mailed and
counted once, however the two runs interleave."""

from collections import Counter

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

import enrollments.services.batch
from enrollments.models import Enrollment, EnrollmentAudit, State
from organisations.models import EnrollmentOrigin, EnrollmentRule, Placement
from organisations.services import rule_apply, rule_save

from ..factories import CourseFactory, UserFactory
from ..races import call_together, met
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
    # Both runs read "nobody enrolled" before either writes: the worst case, made certain.
    monkeypatch.setattr(enrollments.services.batch, "batch_decide", met(enrollments.services.batch.batch_decide, 2))

    totals = call_together([lambda: rule_apply(rule=rule, actor=admin, email_students=True)] * 2)

    assert all(isinstance(t, dict) for t in totals), totals
    assert sorted(t["enrolled"] for t in totals) == [0, PEOPLE]  # one run enrolled everyone, the other nobody
    assert Enrollment.objects.filter(course=course, is_active=True).count() == PEOPLE
    assert Counter(EnrollmentAudit.objects.filter(course=course).values_list("user_id", "state_before", "state_after")) == Counter(
        (u.pk, State.NONE, State.ENROLLED) for u in users
    )
    assert Counter(m.to[0] for m in mail.outbox) == Counter(u.email for u in users)
    assert EnrollmentOrigin.objects.filter(course=course).count() == PEOPLE
