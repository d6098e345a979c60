"""Permission-checked fetches: the groups a leader manages, and the
organisation pages' check (platform administrators only)."""

from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _

from accounts.rules import is_platform_admin

from ..models import Group
from ..rules import can_manage_group


def group_for_leader(request, group_id: int) -> Group:
    """The group if the requesting user leads it (or is a platform admin).

    Raises Http404 for an unknown id and PermissionDenied (403) otherwise."""
    group = get_object_or_404(Group, pk=group_id)
    if not can_manage_group(request.user, group):
        raise PermissionDenied(_("You do not lead this group."))
    return group


def org_admin_required(request) -> None:
    """Every /organisation/ page: platform administrators only (403 otherwise)."""
    if not is_platform_admin(request.user):
        raise PermissionDenied(_("Only platform administrators manage the organisation."))
