"""The period and renewal an assignment or a rule carries, set from their pages."""

import pytest
from django.urls import reverse

from organisations.models import Assignment, EnrollmentRule, UnitKind

from .factories import OrgUnitFactory

pytestmark = pytest.mark.django_db


def test_an_assignment_is_linked_with_its_terms_and_the_page_shows_them(client_for, platform_admin, course):
    team = OrgUnitFactory(kind=UnitKind.TEAM)
    url = reverse("org_unit_assign", args=["team", team.pk])
    client = client_for(platform_admin)
    response = client.post(url, {"action": "confirm", "course": course.pk, "duration_days": "30", "recur_months": "12"})
    assert response.status_code == 302
    assignment = Assignment.objects.get()
    assert (assignment.duration_days, assignment.recur_months) == (30, 12)
    page = client.get(url).content.decode()
    assert "30 days of access, re-enrolled every 12 months" in page
    assert 'id="id_recur_months"' in page and "Re-enroll every N months" in page


@pytest.mark.parametrize(("field", "value"), [("duration_days", "0"), ("duration_days", "3651"), ("recur_months", "121"), ("recur_months", "a year")])
def test_bad_terms_on_an_assignment_say_why_and_link_nothing(client_for, platform_admin, course, field, value):
    team = OrgUnitFactory(kind=UnitKind.TEAM)
    response = client_for(platform_admin).post(
        reverse("org_unit_assign", args=["team", team.pk]), {"action": "confirm", "course": course.pk, field: value}
    )
    assert response.status_code == 200
    assert response.context["form"].errors[field]
    assert not Assignment.objects.exists()


def test_a_rule_carries_its_terms_and_refuses_bad_ones(client_for, platform_admin, course):
    dept = OrgUnitFactory()
    client = client_for(platform_admin)
    data = {"name": "Annual compliance", "courses": [course.pk], "department": dept.pk, "retroactive": "on", "is_active": "on"}
    response = client.post(reverse("org_rule_create"), {**data, "recur_months": "0", "action": "confirm"})
    assert response.status_code == 200 and response.context["form"].errors["recur_months"]
    assert not EnrollmentRule.objects.exists()
    response = client.post(reverse("org_rule_create"), {**data, "duration_days": "365", "recur_months": "12", "action": "confirm"})
    assert response.status_code == 302
    rule = EnrollmentRule.objects.get()
    assert (rule.duration_days, rule.recur_months) == (365, 12)
