import pytest
from django.urls import reverse

from codes.models import EnrollmentCode, Status
from enrollments.models import Enrollment
from organisations.models import Group, GroupMembership

from ..factories import UserFactory
from .factories import EnrollmentCodeFactory, GroupFactory, RedemptionFactory

pytestmark = pytest.mark.django_db


def test_code_admin_filters_and_deactivate_action(client_for, platform_admin, course, other_course):
    group = GroupFactory()
    a = EnrollmentCodeFactory(courses=[course])
    b = EnrollmentCodeFactory(courses=[other_course], groups=[group], max_uses=1, uses=1)
    RedemptionFactory(code=a)
    client = client_for(platform_admin)
    url = reverse("admin:codes_enrollmentcode_changelist")
    assert client.get(url).status_code == 200
    assert list(client.get(url, {"status": Status.USED}).context["cl"].queryset) == [b]
    assert list(client.get(url, {"batch__courses__id__exact": course.pk}).context["cl"].queryset) == [a]
    assert list(client.get(url, {"batch__groups__id__exact": group.pk}).context["cl"].queryset) == [b]
    assert list(client.get(url, {"batch__id__exact": a.batch_id}).context["cl"].queryset) == [a]
    response = client.post(url, {"action": "deactivate_selected", "_selected_action": [a.pk, b.pk]}, follow=True)
    assert response.redirect_chain[-1][1] == 302
    assert "2 codes deactivated." in response.content.decode()
    assert EnrollmentCode.objects.filter(deactivated_at__isnull=False).count() == 2
    one = EnrollmentCodeFactory(courses=[course])
    response = client.post(url, {"action": "deactivate_selected", "_selected_action": [one.pk]}, follow=True)
    assert "1 code deactivated." in response.content.decode()
    for name in ("codes_codebatch_changelist", "codes_redemption_changelist"):
        assert client.get(reverse(f"admin:{name}")).status_code == 200
    assert client.get(reverse("admin:codes_enrollmentcode_change", args=[a.pk])).status_code == 200


def test_group_admin_adds_members_through_the_service(client_for, platform_admin, course):
    member = UserFactory(username="newmember")
    client = client_for(platform_admin)
    response = client.post(
        reverse("admin:organisations_group_add"),
        {
            "name": "Night shift", "description": "", "courses": [course.pk], "leaders": [platform_admin.pk],
            "add_members": "newmember",
            "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    group = Group.objects.get(name="Night shift")
    assert GroupMembership.objects.filter(group=group, user=member).exists()
    assert Enrollment.objects.filter(user=member, course=course, is_active=True).exists()
    assert client.get(reverse("admin:organisations_group_changelist")).status_code == 200
