"""/groups/: the groups a leader leads."""


from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.shortcuts import render

from ..rules import groups_led_by


@login_required
def group_list(request):
    """The groups the user leads (all for platform admins), with links to their codes pages."""
    groups = groups_led_by(user=request.user).annotate(member_count=Count("memberships")).prefetch_related("courses")
    return render(request, "organisations/group_list.html", {"groups": groups})
